package audit_test

import (
	"os"
	"syscall"
)

// umask returns the process umask (and leaves it as it was).
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}
