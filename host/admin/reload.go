package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
)

// Reload results.
const (
	ReloadApplied   = "applied"   // a new configuration serves
	ReloadUnchanged = "unchanged" // the resources hash to the running configuration
	ReloadRejected  = "rejected"  // invalid, or its policies could not be built: the running one keeps serving
)

// ReloadReport is the outcome of one reload.
type ReloadReport struct {
	Result   string    `json:"result"`
	Hash     string    `json:"hash"`               // the configuration serving afterwards
	Problems []string  `json:"problems,omitempty"` // why a change was rejected
	At       time.Time `json:"at"`
}

// Reloader loads the resources again and applies them when they changed.
// Reloads are serialized: a SIGHUP, an admin POST /reload and a file
// watcher never build two generations at once. A bad change leaves the
// running configuration serving; every reason is logged and reported.
type Reloader struct {
	gw   *proxy.Gateway
	load func() (*configs.Snapshot, error)
	log  *slog.Logger
	// Notice is called with a snapshot about to be applied (the gateway's
	// "not active yet" log lines).
	Notice func(*configs.Snapshot)

	mu   sync.Mutex
	last ReloadReport

	reloads *prometheus.CounterVec
	hash    *prometheus.GaugeVec
}

// NewReloader returns a Reloader of gw from load, whose metrics —
// novaedge_config_reloads_total{result} and novaedge_config_hash{hash} (1
// for the configuration serving) — are registered on reg (if not nil).
func NewReloader(gw *proxy.Gateway, load func() (*configs.Snapshot, error), reg prometheus.Registerer, logger *slog.Logger) *Reloader {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reloader{
		gw: gw, load: load, log: logger,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novaedge_config_reloads_total",
			Help: "Configuration reloads by result: applied, unchanged or rejected.",
		}, []string{"result"}),
		hash: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "novaedge_config_hash",
			Help: "1 for the hash of the configuration serving.",
		}, []string{"hash"}),
	}
	for _, res := range []string{ReloadApplied, ReloadUnchanged, ReloadRejected} {
		r.reloads.WithLabelValues(res)
	}
	if reg != nil {
		reg.MustRegister(r.reloads, r.hash)
	}
	r.Serving()
	return r
}

// Serving records the hash of the configuration the gateway serves (call
// it after the first Apply).
func (r *Reloader) Serving() {
	r.hash.Reset()
	if snap := r.gw.Snapshot(); snap != nil {
		r.hash.WithLabelValues(snap.Hash).Set(1)
	}
}

// Reload loads and applies the resources. The report says what happened;
// err is non-nil when the change was rejected.
func (r *Reloader) Reload(ctx context.Context) (ReloadReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := ReloadReport{At: time.Now()}
	if cur := r.gw.Snapshot(); cur != nil {
		rep.Hash = cur.Hash
	}
	snap, err := r.load()
	switch {
	case err != nil:
		var ps configs.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				rep.Problems = append(rep.Problems, p.String())
			}
		} else {
			rep.Problems = []string{err.Error()}
		}
	case snap.Hash == rep.Hash:
		rep.Result = ReloadUnchanged
	default:
		if r.Notice != nil {
			r.Notice(snap)
		}
		if err = r.gw.Apply(ctx, snap); err != nil {
			rep.Problems = []string{err.Error()}
		} else {
			rep.Result, rep.Hash = ReloadApplied, snap.Hash
			r.Serving()
		}
	}
	if rep.Problems != nil {
		rep.Result = ReloadRejected
		for _, p := range rep.Problems {
			r.log.Error("reload rejected; the running configuration keeps serving", "problem", p)
		}
	} else {
		r.log.Info("reload", "result", rep.Result, "hash", rep.Hash)
	}
	r.reloads.WithLabelValues(rep.Result).Inc()
	r.last = rep
	if rep.Result == ReloadRejected {
		return rep, errors.New("reload rejected: " + rep.Problems[0])
	}
	return rep, nil
}

// Last returns the last reload's report (zero before any).
func (r *Reloader) Last() ReloadReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// SetReloader enables POST /reload, and the last reload's report in
// GET /reload.
func (s *Server) SetReloader(r *Reloader) { s.reloader.Store(r) }

// reload serves POST /reload: 200 with the report when the configuration
// was applied or unchanged, 422 with every problem when it was rejected.
func (s *Server) reload(w http.ResponseWriter, req *http.Request) {
	r := s.reloader.Load()
	if r == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "reloading is not enabled"})
		return
	}
	rep, err := r.Reload(req.Context())
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// lastReload serves GET /reload: the last reload's report.
func (s *Server) lastReload(w http.ResponseWriter, req *http.Request) {
	r := s.reloader.Load()
	if r == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "reloading is not enabled"})
		return
	}
	writeJSON(w, http.StatusOK, r.Last())
}
