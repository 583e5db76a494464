//go:build linux

package devcluster

import "syscall"

// childAttr puts a node in its own process group (a terminal's Ctrl-C reaches
// only the orchestrator, which stops nodes in order) and asks the kernel to
// send it SIGTERM if the orchestrator dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
