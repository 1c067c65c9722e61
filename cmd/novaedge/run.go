package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/admin"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/policy"
	"github.com/novaedge/novaedge/host/policy/bundled"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
	"github.com/novaedge/novaedge/host/wasm"
)

// newWasmRuntime starts the proxy-wasm runtime, with wazero's compilation
// cache under the state directory so a restart does not recompile modules.
// A state directory that cannot be created costs only the cache.
func newWasmRuntime(ctx context.Context, s *settings, caller wasm.HTTPCaller, host *policy.Host, logger *slog.Logger) (*wasm.Runtime, error) {
	cache := filepath.Join(s.StateDir, "wasm-cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		logger.Warn("no compilation cache for wasm modules: modules compile at every start", "dir", cache, "error", err)
		cache = ""
	}
	rt, err := wasm.NewRuntime(ctx, wasm.Options{CacheDir: cache, Logger: logger, HTTPCaller: caller, Foreign: host.Funcs})
	if err != nil {
		return nil, fmt.Errorf("wasm runtime: %w", err)
	}
	return rt, nil
}

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run -c PATH…",
		Short: "Serve the resources in PATH (files or directories of YAML)",
		Long: `Serve the resources in the given files or directories.

A change to the resource files or to a policy's module file is applied
live (--watch, on by default), as are SIGHUP and ` + "`novaedge reload`" + `: a bad
change is refused with every problem logged, and the running configuration
keeps serving.

The admin API (--admin, 127.0.0.1:9901) needs no credentials on loopback
until --admin-tokens (bearer tokens, read or write role) or
--admin-client-ca (mutual TLS) is given, and refuses to listen anywhere
else without one of them. It answers only to its own names in Host
(--admin-hostnames adds some) and refuses cross-origin requests.

SIGTERM or SIGINT drain: listeners stop accepting, in-flight requests finish within
--shutdown-grace, and the process exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if len(s.Resources) == 0 {
				return errors.New("no resources: give -c PATH (a file or directory of YAML), or try `novaedge demo`")
			}
			logger, err := newLogger(cmd.ErrOrStderr(), s.LogLevel, s.LogFormat)
			if err != nil {
				return err
			}
			var watchPaths []string
			if s.Watch {
				watchPaths = s.Resources
			}
			return serve(cmd.Context(), s, logger, reload.Files(s.Resources, isBundled), watchPaths)
		},
	}
	addSettingsFlags(cmd)
	return cmd
}

// isBundled reports the module names the binary ships.
func isBundled(name string) bool {
	_, ok := bundled.Modules()[name]
	return ok
}

// serve runs the gateway until SIGTERM/SIGINT (or ctx ends), reloading on
// SIGHUP and when the files under watchPaths change.
func serve(ctx context.Context, s *settings, logger *slog.Logger, load reload.Loader, watchPaths []string) error {
	// Before anything starts: an admin API others could reach unauthenticated is refused.
	if host, _, err := net.SplitHostPort(s.Admin); err == nil {
		if err := admin.CheckExposure(host, s.AdminTokens != "" || s.AdminClientCA != ""); err != nil {
			return adminStartError(s, err)
		}
	}
	snap, err := load()
	if err != nil {
		logProblems(logger, "configuration rejected", err)
		return exitError{}
	}
	caller := &policy.Caller{} // plugins' HTTP callouts, through gw's backends
	host := policy.NewHost()
	rt, err := newWasmRuntime(ctx, s, caller, host, logger)
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	builder := &policy.Builder{Runtime: rt, Host: host}
	metrics := observe.NewMetrics()
	gw := proxy.New(proxy.Options{Logger: logger, Policies: builder.Build, SecretsDir: s.SecretsDir, Metrics: metrics})
	caller.Gateway = gw
	reg := admin.NewRegistry()
	reg.MustRegister(&policy.Collector{Runtime: rt, Gateway: gw}, metrics)
	adm := admin.New(gw, reg, logger)
	if err := adm.Start(s.Admin, s.adminAccess()); err != nil {
		return adminStartError(s, err)
	}
	stopAdmin := func() {
		sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownGrace)
		defer cancel()
		adm.Shutdown(sctx)
	}
	logNotices(logger, snap)
	if err := gw.Apply(ctx, snap); err != nil {
		stopAdmin()
		gw.Shutdown(context.Background())
		logger.Error("configuration rejected", "error", err)
		return exitError{}
	}
	adm.SetReady(true)
	pushDir, _ := os.Getwd()
	if len(s.Resources) > 0 {
		pushDir = resourceDir(s.Resources[0])
	}
	reloader := reload.New(gw, load, reload.Options{
		Registerer: reg, Logger: logger, IsBundled: isBundled, PushDir: pushDir,
		Notice: func(snap *configs.Snapshot) { logNotices(logger, snap) },
	})
	adm.SetReloader(reloader)
	if len(watchPaths) > 0 {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		err := reload.Watch(wctx, watchPaths, func() []string { return gw.Snapshot().ExternalPaths() },
			func() { reloader.Reload(wctx) }, logger)
		if err != nil {
			logger.Warn("not watching the resource files; reload with SIGHUP or novaedge reload", "error", err)
		}
	}
	if s.Watch && s.AdminTokens != "" {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		err := reload.Watch(wctx, []string{s.AdminTokens}, func() []string { return nil }, func() { adm.ReloadTokens() }, logger)
		if err != nil {
			logger.Warn("not watching the admin tokens file; reload it with SIGHUP", "error", err)
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				adm.ReloadTokens()   // logs what happened
				reloader.Reload(ctx) // logs what happened
				continue
			}
			logger.Info("draining", "signal", sig.String(), "grace", s.ShutdownGrace)
		case <-ctx.Done():
			logger.Info("draining", "reason", ctx.Err())
		}
		adm.SetReady(false)
		sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownGrace)
		err := gw.Shutdown(sctx)
		cancel()
		stopAdmin()
		if err != nil {
			logger.Warn("shutdown grace ended with requests in flight", "error", err)
		}
		logger.Info("stopped")
		return nil
	}
}

// adminAccess is the admin API's access from the settings.
func (s *settings) adminAccess() admin.Access {
	return admin.Access{TokensFile: s.AdminTokens, TLSCert: s.AdminTLSCert, TLSKey: s.AdminTLSKey,
		ClientCA: s.AdminClientCA, Hostnames: s.AdminHostnames}
}

// adminStartError says why the admin API did not start, and for an
// exposed one without authentication, what to do.
func adminStartError(s *settings, err error) error {
	if errors.Is(err, admin.ErrExposed) {
		return fmt.Errorf("admin API on %s: %w: give --admin-tokens FILE (`novaedge admin token` makes a token) "+
			"or --admin-client-ca with --admin-tls-cert and --admin-tls-key, or listen on loopback (--admin %s)", s.Admin, err, defaultAdmin)
	}
	return fmt.Errorf("admin API: %w", err)
}

// resourceDir is the directory of a resource path: relative paths in a
// resource set pushed to PUT /config resolve against it.
func resourceDir(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Dir(p)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return abs
	}
	return filepath.Dir(abs)
}

func logProblems(logger *slog.Logger, msg string, err error) {
	var ps configs.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			logger.Error(msg, "problem", p.String())
		}
		return
	}
	logger.Error(msg, "error", err)
}

func logNotices(logger *slog.Logger, snap *configs.Snapshot) {
	for _, n := range proxy.Inactive(snap, policy.ActiveTypes()...) {
		logger.Warn("not active yet", "resource", n.Kind+" "+n.Name, "field", n.Field, "detail", n.Message)
	}
}
