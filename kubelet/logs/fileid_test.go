package logs

import (
	"os"
	"syscall"
)

func fileID(st os.FileInfo) uint64 { return st.Sys().(*syscall.Stat_t).Ino }
