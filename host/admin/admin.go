// Package admin serves NovaEdge's admin API: liveness, readiness, the
// effective configuration, the status tables and the changes.
//
//	GET /healthz  200 while the process runs                                    open
//	GET /readyz   200 once a configuration serves and until shutdown begins,   open
//	              else 503
//	GET /config   the effective (normalized) configuration as JSON, secrets      read
//	              redacted; ETag is its hash; ?format=yaml: as resource
//	              documents PUT /config takes back
//	GET /status   gateways, routes, backends, policies and what is not          read
//	              active yet
//	GET /metrics  Prometheus metrics (the registry given to New)                 read
//	GET /reload   the last change's report                                       read
//	POST /reload  load the resource files again and apply them if they          write
//	              changed (200 applied or unchanged, 422 rejected with every
//	              problem)
//	PUT /config   replace the configuration with the resource set in the        write
//	              body (YAML documents); If-Match: "<hash>" makes it
//	              conditional (412)
//	POST /plugins/{namespace}/{name}/reload, POST /plugins/{name}/reload         write
//	              build a policy's plugin anew: its module read again, fresh VMs
//	POST /cache/purge  remove cached responses                                   write
//	GET /debug/pprof/…  Go's profiler                                           write
//
// # Who may use it
//
// Start takes an Access. Callers authenticate with a bearer token
// ("Authorization: Bearer TOKEN") from the tokens file (ParseTokens: the
// tokens' SHA-256 digests, each with a name and a role; only digests are
// kept in memory and compared in constant time; the file is read at Start
// and again by ReloadTokens, which the novaedge command calls on SIGHUP and
// when the file changes), and/or with a client certificate verified
// against the client CA (mutual TLS; the role is the certificate subject's
// OU, "write" or "read", and read when it names neither). The read role
// may use the read endpoints; the write role may use every endpoint.
// /healthz and /readyz are open to all, always. A wrong token is 401, a
// role too weak 403.
//
// Without tokens or a client CA, the admin API serves everyone with the
// write role, and Start refuses (ErrExposed) to listen anywhere but on a
// loopback address: local use (the demo, the CLI on the same host) needs
// no credentials, other hosts cannot reach it.
//
// # Browsers: DNS rebinding and cross-site requests
//
// Whatever the authentication, every endpoint but /healthz and /readyz
//
//   - answers only to its own names in Host: the address it is bound to
//     (every local interface's address when bound to all), localhost,
//     127.0.0.1, [::1], and Access.Hostnames; any other Host is 421, which
//     defeats DNS rebinding (a page of attacker.example whose name now
//     resolves to 127.0.0.1 still sends Host: attacker.example);
//   - refuses (403) a request with an Origin header other than its own
//     origin, or with Sec-Fetch-Site other than same-origin or none;
//   - refuses (403) a write that a browser would send across origins
//     without a CORS preflight: a change needs an Authorization: Bearer
//     header, Content-Type application/json or application/yaml, or an
//     X-NovaEdge-Admin header. The admin API never answers a preflight and
//     never sends CORS headers, so no other origin can send those.
//
// Every request to a write endpoint, allowed or refused, is logged at Info
// as "admin audit" with its method, path, query, remote address, principal
// (token:NAME, cert:SUBJECT, local, or - when refused before knowing it),
// role, status and duration; never a token.
//
// # Secrets
//
// GET /config shows the configuration through a configs.Redactor: API
// keys, JWT HMAC secrets, the private and symmetric members of inline
// JWKs and URL passwords are placeholders, "<redacted:hmac-sha256:…>",
// keyed by a random key of the process. A resource set pushed to PUT
// /config may keep them: each placeholder is replaced by the running
// secret it stands for before the set is loaded, so GET ?format=yaml, an
// edit and a PUT with If-Match round-trip, and an unchanged set is a
// no-op. A placeholder that stands for no running secret (another
// process's, or a secret changed since) or that is moved to another field
// is 422 naming the field. A Wasm policy's config is opaque and shown as
// written: keep a module's secrets out of it. Problems and logs name
// fields, never secret values.
package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
)

// Server is the admin HTTP server.
type Server struct {
	gw    *proxy.Gateway
	log   *slog.Logger
	ready atomic.Bool
	mux   *http.ServeMux // the endpoints without the access rules (Handler)
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}

	reloader atomic.Pointer[reload.Reloader]
	redactor *configs.Redactor

	// Set by Start.
	authenticated bool   // tokens or mutual TLS configured
	tokensFile    string // "" for none
	tokens        atomic.Pointer[Tokens]
	hostnames     map[string]bool // what the Host header may name
}

// New returns an admin server for gw; it serves nothing until Start.
// /metrics serves reg (nil: a registry of the Go runtime's and the
// process's own metrics).
func New(gw *proxy.Gateway, reg *prometheus.Registry, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{gw: gw, log: logger, done: make(chan struct{}), redactor: configs.NewRedactor(nil)}
	if reg == nil {
		reg = NewRegistry()
	}
	routes := []struct {
		pattern string
		level   accessLevel
		handler http.Handler
	}{
		{"GET /healthz", open, http.HandlerFunc(s.healthz)},
		{"GET /readyz", open, http.HandlerFunc(s.readyz)},
		{"GET /config", RoleRead, http.HandlerFunc(s.config)},
		{"GET /status", RoleRead, http.HandlerFunc(s.status)},
		{"GET /reload", RoleRead, http.HandlerFunc(s.lastReload)},
		{"GET /metrics", RoleRead, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)})},
		{"POST /reload", RoleWrite, http.HandlerFunc(s.reload)},
		{"PUT /config", RoleWrite, http.HandlerFunc(s.putConfig)},
		{"POST /plugins/{namespace}/{name}/reload", RoleWrite, http.HandlerFunc(s.reloadPlugin)},
		{"POST /plugins/{name}/reload", RoleWrite, http.HandlerFunc(s.reloadPlugin)},
		{"POST /cache/purge", RoleWrite, http.HandlerFunc(s.purgeCache)},
		{"GET /debug/pprof/", RoleWrite, http.HandlerFunc(pprof.Index)},
		{"GET /debug/pprof/cmdline", RoleWrite, http.HandlerFunc(pprof.Cmdline)},
		{"GET /debug/pprof/profile", RoleWrite, http.HandlerFunc(pprof.Profile)},
		{"GET /debug/pprof/symbol", RoleWrite, http.HandlerFunc(pprof.Symbol)},
		{"GET /debug/pprof/trace", RoleWrite, http.HandlerFunc(pprof.Trace)},
	}
	s.mux = http.NewServeMux()
	guarded := http.NewServeMux()
	for _, rt := range routes {
		s.mux.Handle(rt.pattern, rt.handler)
		guarded.Handle(rt.pattern, s.guard(rt.level, rt.handler))
	}
	s.srv = &http.Server{Handler: guarded, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	return s
}

// NewRegistry returns a Prometheus registry with the Go runtime's and the
// process's collectors, for the gateway's own metrics to join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler returns the admin API's endpoints without the access rules
// that Start puts in front of them (for tests of the endpoints
// themselves; never serve it).
func (s *Server) Handler() http.Handler { return s.mux }

// SetReady marks the gateway ready (a configuration serves) or not
// (starting, or draining).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Start binds addr and serves in the background, under the access rules
// of a (see the package doc). It refuses, with ErrExposed, an address
// other hosts can reach when a configures no authentication.
func (s *Server) Start(addr string, a Access) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if a.TokensFile != "" {
		t, err := ReadTokens(a.TokensFile)
		if err != nil {
			return err
		}
		s.tokensFile = a.TokensFile
		s.tokens.Store(t)
	}
	tlsConf, err := serverTLS(a)
	if err != nil {
		return err
	}
	s.authenticated = a.TokensFile != "" || a.ClientCA != ""
	if err := CheckExposure(host, s.authenticated); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	bound := ln.Addr().(*net.TCPAddr)
	if ip, ok := netip.AddrFromSlice(bound.IP); ok {
		if err := CheckExposure(ip.Unmap().String(), s.authenticated); err != nil {
			ln.Close()
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	s.hostnames = hostnames(bound, a.Hostnames)
	scheme := "http"
	if tlsConf != nil {
		s.srv.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server failed", "error", err)
		}
	}()
	auth := "none (loopback only)"
	switch {
	case a.TokensFile != "" && a.ClientCA != "":
		auth = "bearer tokens and client certificates"
	case a.TokensFile != "":
		auth = "bearer tokens"
	case a.ClientCA != "":
		auth = "client certificates"
	}
	s.log.Info("admin API listening", "address", ln.Addr().String(), "scheme", scheme, "authentication", auth, "tokens", s.tokens.Load().Len())
	if s.authenticated && tlsConf == nil && !bound.IP.IsLoopback() {
		s.log.Warn("admin API: bearer tokens cross the network in clear text; give it a TLS certificate", "address", ln.Addr().String())
	}
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server, letting requests finish until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() || s.gw.Snapshot() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "hash": s.gw.Snapshot().Hash})
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	snap := s.gw.Snapshot()
	if snap == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no configuration is serving"})
		return
	}
	asYAML := r.URL.Query().Get("format") == "yaml"
	shown := s.redactor.Snapshot(snap) // secrets as placeholders; the hash of snap
	var b []byte
	var err error
	if asYAML {
		b, err = shown.YAML()
	} else {
		b, err = shown.JSON()
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	etag := `"` + snap.Hash + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Config-Hash", snap.Hash)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if asYAML {
		w.Header().Set("Content-Type", "application/yaml")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Write(b)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if s.gw.Snapshot() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no configuration is serving"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		proxy.Status
		Reload *reloadStatus `json:"reload,omitempty"`
	}{s.gw.Status(), s.reloadStatus()})
}
