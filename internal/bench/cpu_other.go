//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package bench

import "time"

// processCPU reports that the process's CPU time is not available here.
func processCPU() (time.Duration, bool) { return 0, false }
