package server

import "syscall"

// statfsUsage measures the file system holding dir as df does: used is the
// size less the free blocks, total is used plus what an unprivileged
// process may still allocate (the blocks reserved for root do not count).
func statfsUsage(dir string) func() (used, total uint64, err error) {
	return func() (used, total uint64, err error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, 0, err
		}
		bs := uint64(st.Bsize) //nolint:gosec // G115: a block size is positive
		used = (st.Blocks - st.Bfree) * bs
		return used, used + st.Bavail*bs, nil
	}
}
