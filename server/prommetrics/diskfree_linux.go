package prommetrics

import (
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterDiskFree adds gauges of the free and total bytes of the file
// system holding dir (the data directory) to reg.
func RegisterDiskFree(reg prometheus.Registerer, dir string) {
	stat := func(free bool) func() float64 {
		return func() float64 {
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				return -1
			}
			if free {
				return float64(st.Bavail) * float64(st.Bsize)
			}
			return float64(st.Blocks) * float64(st.Bsize)
		}
	}
	labels := prometheus.Labels{"dir": dir}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shoal", Name: "disk_free_bytes", ConstLabels: labels,
			Help: "Bytes available to the server on the file system of its data directory (-1 when it cannot be read)."}, stat(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shoal", Name: "disk_size_bytes", ConstLabels: labels,
			Help: "Size of the file system of the data directory (-1 when it cannot be read)."}, stat(false)),
	)
}
