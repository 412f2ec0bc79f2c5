//go:build unix

package frlog

import (
	"os"
	"syscall"
)

// idOf returns the device and inode of a file: what names it across a
// restart, whatever it is called by then.
func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		// The conversions matter: the field types differ between systems.
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}
