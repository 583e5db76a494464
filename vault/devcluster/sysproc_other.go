//go:build unix && !linux

package devcluster

import "syscall"

// childAttr puts a node in its own process group (see the Linux version;
// other systems have no parent-death signal).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
