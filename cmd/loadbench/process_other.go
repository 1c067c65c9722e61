//go:build !linux

package main

import "syscall"

// childAttr: only Linux has the parent-death signal; elsewhere a child
// shares loadbench's process group and gets the terminal's Ctrl-C too.
func childAttr() *syscall.SysProcAttr { return nil }
