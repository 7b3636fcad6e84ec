//go:build unix

package main

import (
	"os"
	"syscall"
)

// identity returns the device and inode numbers of a file: what stays the
// same when the file is renamed and changes when a new file takes its name.
func identity(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)} //nolint:unconvert // Dev's type differs by platform
	}
	return fileID{}
}
