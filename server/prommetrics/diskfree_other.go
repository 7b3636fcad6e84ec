//go:build !linux

package prommetrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterDiskFree does nothing here: the free-space gauges are Linux's.
func RegisterDiskFree(prometheus.Registerer, string) {}
