package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH…",
		Short: "Check resource files; print every problem and what is not active yet",
		Long: `Check resource files or directories without serving them.

Every problem is printed, one per line, naming the file, the resource and
the field; the exit status is 1 if there is any. Features that parse and
validate but that this build does not carry out yet are listed as
"not active yet" (they do not fail validation).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			snap, err := configs.Load(args...)
			if err != nil {
				var ps configs.Problems
				if errors.As(err, &ps) {
					for _, p := range ps {
						fmt.Fprintln(out, p.String())
					}
					fmt.Fprintf(out, "%d problem(s)\n", len(ps))
				} else {
					fmt.Fprintln(out, err)
				}
				return exitError{}
			}
			fmt.Fprintf(out, "ok: %d VIP(s), %d gateway(s), %d backend(s), %d route(s), %d policy(ies); hash %s\n",
				len(snap.VIPs), len(snap.Gateways), len(snap.Backends), len(snap.Routes), len(snap.Policies), snap.Hash)
			if ns := proxy.Inactive(snap); len(ns) > 0 {
				fmt.Fprintf(out, "not active yet (%d):\n", len(ns))
				for _, n := range ns {
					fmt.Fprintln(out, "  "+n.String())
				}
			}
			return nil
		},
	}
}
