//go:build !linux

package main

import "github.com/prometheus/client_golang/prometheus"

// registerDiskFree does nothing here: the free-space gauges are Linux's.
func registerDiskFree(prometheus.Registerer, string) {}
