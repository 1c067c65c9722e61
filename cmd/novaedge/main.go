// Command novaedge is the NovaEdge API gateway: one binary that routes,
// balances and guards HTTP traffic in front of a fleet of services.
//
//	novaedge run -c PATH…       serve the resources in PATH (files or directories)
//	novaedge validate PATH…     check resources; print every problem; exit 1 on any
//	novaedge status             print the running gateway's tables (from its admin API)
//	novaedge reload             make the running gateway load its resources again
//	novaedge plugin reload NAME build a policy's plugin anew
//	novaedge admin token        make an admin API token and its tokens-file line
//	novaedge demo               the reference use case on localhost, with demo services
//	novaedge version
package main

import (
	"fmt"
	"os"
)

// version is set at link time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		if _, quiet := err.(exitError); !quiet {
			fmt.Fprintln(os.Stderr, "novaedge:", err)
		}
		os.Exit(1)
	}
}

// exitError ends the command with status 1 after the command has already
// said why.
type exitError struct{}

func (exitError) Error() string { return "failed" }
