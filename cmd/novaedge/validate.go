package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/policy"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
	"github.com/novaedge/novaedge/host/wasm"
)

func newValidateCmd() *cobra.Command {
	var skipModules, skipSecrets bool
	var secretsDir string
	cmd := &cobra.Command{
		Use:   "validate PATH…",
		Short: "Check resource files; print every problem and what is not active yet",
		Long: `Check resource files or directories without serving them.

Every problem is printed, one per line, naming the file, the resource and
the field; the exit status is 1 if there is any. Features that parse and
validate but that this build does not carry out yet are listed as
"not active yet" (they do not fail validation).

The Wasm modules of the policies are checked as the gateway would load
them: the file is read, its sha256 pin compared, the module compiled and
its proxy-wasm ABI checked, and the plugin started with its configuration
(proxy_on_vm_start and proxy_on_configure must accept it).
--skip-modules leaves that out.

The TLS secrets of HTTPS listeners are read from --secrets-dir (as
` + "`novaedge run`" + ` would: <dir>/<namespace>/<name>/tls.crt and tls.key): a
missing or unreadable secret, or a key that does not match its certificate,
is a problem; an expired certificate, one not yet valid, one expiring within
a week or one not covering a listener hostname is a warning. --skip-secrets
leaves that out.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			// The loader of run: the files policies name (modules, keys
			// files) are read and folded into the hash, so validate prints
			// the hash run serves for the same files.
			snap, err := reload.Files(args, isBundled)()
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
			if !skipSecrets {
				ps, warnings := checkSecrets(snap, secretsDir, time.Now())
				for _, w := range warnings {
					fmt.Fprintln(out, "warning: "+w)
				}
				if len(ps) > 0 {
					for _, p := range ps {
						fmt.Fprintln(out, p.String())
					}
					fmt.Fprintf(out, "%d problem(s)\n", len(ps))
					return exitError{}
				}
			}
			if !skipModules {
				if ps := checkModules(cmd.Context(), snap, cmd.ErrOrStderr(), out); len(ps) > 0 {
					for _, p := range ps {
						fmt.Fprintln(out, p.String())
					}
					fmt.Fprintf(out, "%d problem(s)\n", len(ps))
					return exitError{}
				}
			}
			fmt.Fprintf(out, "ok: %d VIP(s), %d gateway(s), %d backend(s), %d route(s), %d policy(ies); hash %s\n",
				len(snap.VIPs), len(snap.Gateways), len(snap.Backends), len(snap.Routes), len(snap.Policies), snap.Hash)
			if ns := proxy.Inactive(snap, policy.ActiveTypes()...); len(ns) > 0 {
				fmt.Fprintf(out, "not active yet (%d):\n", len(ns))
				for _, n := range ns {
					fmt.Fprintln(out, "  "+n.String())
				}
			}
			return nil
		},
	}
	defSecrets := defaultSecretsDir
	if v := os.Getenv("NOVAEDGE_SECRETS_DIR"); v != "" {
		defSecrets = v
	}
	cmd.Flags().StringVar(&secretsDir, "secrets-dir", defSecrets, "directory of TLS secrets, as for run (env NOVAEDGE_SECRETS_DIR)")
	cmd.Flags().BoolVar(&skipSecrets, "skip-secrets", false, "do not read the HTTPS listeners' TLS secrets")
	cmd.Flags().BoolVar(&skipModules, "skip-modules", false, "do not load, compile and start the policies' Wasm modules")
	return cmd
}

// checkModules builds every policy of snap that runs a plugin (Wasm
// policies, and first-party ones whose plugin is bundled) on a throwaway
// runtime, as the gateway would, and returns a problem for each that fails. Plugins'
// own log lines go to logOut.
func checkModules(ctx context.Context, snap *configs.Snapshot, logOut, out io.Writer) configs.Problems {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(snap.Policies) == 0 {
		return nil
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := wasm.NewRuntime(ctx, wasm.Options{Logger: logger, Foreign: policy.HostFunctions()})
	if err != nil {
		return configs.Problems{{Message: "wasm runtime: " + err.Error()}}
	}
	defer rt.Close(ctx)
	b := &policy.Builder{Runtime: rt}
	var ps configs.Problems
	for _, p := range snap.Policies {
		pol, err := b.Build(ctx, p)
		if err == nil && pol == nil {
			continue // not active in this build: listed as such
		}
		if err != nil {
			field := "spec.wasm"
			if p.Spec.Type != configs.PolicyWasm {
				field = "" // a first-party policy's errors name their field
			}
			ps = append(ps, configs.Problem{File: p.Source.File, Line: p.Source.Line, Kind: configs.KindPolicy,
				Namespace: p.Metadata.Namespace, Name: p.Metadata.Name, Field: field, Message: err.Error()})
			continue
		}
		module := "bundled " + p.Spec.Type + " plugin"
		if p.Spec.Wasm != nil {
			module = p.Spec.Wasm.Module
		}
		if sr, ok := pol.(proxy.StatsReporter); ok {
			fmt.Fprintf(out, "module ok: %s/%s: %s (sha256 %s)\n", p.Metadata.Namespace, p.Metadata.Name, module, sr.Stats().Module)
		}
		pol.Close()
	}
	return ps
}
