package main

import "syscall"

// childAttr puts a child in its own process group, so that the terminal's
// Ctrl-C reaches loadbench only (which then stops the child in order), and
// has the kernel kill it if loadbench dies without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
