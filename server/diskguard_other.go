//go:build !linux

package server

// statfsUsage returns nil here: by default the disk guard is Linux's (set
// Config.DiskUsage to guard elsewhere).
func statfsUsage(string) func() (used, total uint64, err error) { return nil }
