// Package admin serves NovaEdge's admin API: liveness, readiness, the
// effective configuration and the status tables.
//
//	GET /healthz  200 while the process runs
//	GET /readyz   200 once a configuration serves and until shutdown begins, else 503
//	GET /config   the effective (normalized) configuration as JSON; ETag is its hash;
//	              ?format=yaml: as resource documents PUT /config takes back
//	GET /status   gateways, routes, backends, policies and what is not active yet
//	GET /metrics  Prometheus metrics (the registry given to New)
//	POST /reload  load the resource files again and apply them if they changed
//	              (200 applied or unchanged, 422 rejected with every problem)
//	GET /reload   the last change's report
//	PUT /config   replace the configuration with the resource set in the body
//	              (YAML documents); If-Match: "<hash>" makes it conditional (412)
//	POST /plugins/{namespace}/{name}/reload, POST /plugins/{name}/reload
//	              build a policy's plugin anew: its module read again, fresh VMs
//	GET /debug/pprof/…  Go's profiler (the admin API listens on loopback by default)
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
)

// Server is the admin HTTP server.
type Server struct {
	gw    *proxy.Gateway
	log   *slog.Logger
	ready atomic.Bool
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}

	reloader atomic.Pointer[reload.Reloader]
}

// New returns an admin server for gw; it serves nothing until Start.
// /metrics serves reg (nil: a registry of the Go runtime's and the
// process's own metrics).
func New(gw *proxy.Gateway, reg *prometheus.Registry, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{gw: gw, log: logger, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /config", s.config)
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("POST /reload", s.reload)
	mux.HandleFunc("GET /reload", s.lastReload)
	mux.HandleFunc("PUT /config", s.putConfig)
	mux.HandleFunc("POST /plugins/{namespace}/{name}/reload", s.reloadPlugin)
	mux.HandleFunc("POST /plugins/{name}/reload", s.reloadPlugin)
	mux.HandleFunc("POST /cache/purge", s.purgeCache)
	if reg == nil {
		reg = NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// NewRegistry returns a Prometheus registry with the Go runtime's and the
// process's collectors, for the gateway's own metrics to join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler returns the admin API's handler (for tests).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// SetReady marks the gateway ready (a configuration serves) or not
// (starting, or draining).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Start binds addr and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server failed", "error", err)
		}
	}()
	s.log.Info("admin API listening", "address", ln.Addr().String())
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
	var b []byte
	var err error
	if asYAML {
		b, err = snap.YAML()
	} else {
		b, err = snap.JSON()
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
