// Package reload takes configuration changes live: it loads a resource
// set (from the files, or pushed to the admin API), builds the next
// generation completely, swaps it in and lets the old one drain, through
// one serialized path shared by SIGHUP, the admin API, the CLI and the
// file watcher. A bad change is refused with every reason and the running
// configuration keeps serving.
//
// What did not change survives a change (proxy.Gateway.Apply keeps it by
// fingerprint): listeners, backends with their pools and health, plugins
// with their VMs. A policy's module file that changes on disk is a change.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
)

// Results of a change.
const (
	Applied   = "applied"   // a new configuration serves
	Unchanged = "unchanged" // the resources hash to the running configuration
	Rejected  = "rejected"  // invalid, or could not be built: the running one keeps serving
)

// Sources of a change.
const (
	SourceFiles  = "files"  // the resource files (SIGHUP, POST /reload, the watcher)
	SourcePush   = "push"   // a resource set pushed to PUT /config
	SourcePlugin = "plugin" // a plugin rebuilt (novaedge plugin reload)
)

// Report is the outcome of one change.
type Report struct {
	Result   string    `json:"result"`
	Source   string    `json:"source"`
	Hash     string    `json:"hash"`               // the configuration serving afterwards
	Problems []string  `json:"problems,omitempty"` // why a change was rejected
	At       time.Time `json:"at"`
	// Took is how long loading, building and swapping took.
	Took string `json:"took"`
}

// Loader loads a complete resource set, with the files it names read
// (configs.Snapshot.ReadExternal).
type Loader func() (*configs.Snapshot, error)

// Files returns the Loader of the resource files or directories at paths.
// isBundled reports the module names the binary ships (not files).
func Files(paths []string, isBundled func(string) bool) Loader {
	return func() (*configs.Snapshot, error) {
		snap, err := configs.Load(paths...)
		if err != nil {
			return nil, err
		}
		snap.ReadExternal(isBundled)
		return snap, nil
	}
}

// Documents returns the Loader of resource documents that are not files
// (embedded, or pushed): paths they name resolve against each File's Dir.
func Documents(files []configs.File, isBundled func(string) bool) Loader {
	return func() (*configs.Snapshot, error) {
		snap, err := configs.LoadFiles(files)
		if err != nil {
			return nil, err
		}
		snap.ReadExternal(isBundled)
		return snap, nil
	}
}

// Errors of Push and RebuildPolicy, before anything is built.
var (
	// ErrPrecondition: the If-Match hash is not the running one.
	ErrPrecondition = errors.New("the running configuration is not the one named by If-Match")
	// ErrNoPolicy: no policy of the running configuration has the name.
	ErrNoPolicy = errors.New("no such policy")
)

// Options configure a Reloader.
type Options struct {
	// Registerer gets the metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Notice is called with a snapshot about to be applied (the gateway's
	// "not active yet" log lines).
	Notice func(*configs.Snapshot)
	// IsBundled reports the module names the binary ships (for pushed
	// sets, whose other module names are files).
	IsBundled func(string) bool
	// PushDir is the directory relative paths in a pushed resource set
	// are resolved against (default: the working directory).
	PushDir string
}

// Reloader applies changes to a gateway, one at a time.
type Reloader struct {
	gw    *proxy.Gateway
	files Loader
	opts  Options
	log   *slog.Logger

	mu sync.Mutex
	// source reloads the configuration serving: the files, or the last
	// pushed set (a plugin rebuild reads its module again from it).
	source       Loader
	last         Report
	lastRejected *Report

	reloads *prometheus.CounterVec
	hash    *prometheus.GaugeVec
}

// New returns a Reloader of gw, whose configuration comes from files (nil:
// only pushed sets). Its metrics are novaedge_config_reloads_total{result}
// and novaedge_config_hash{hash} (1 for the configuration serving).
func New(gw *proxy.Gateway, files Loader, opts Options) *Reloader {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Reloader{
		gw: gw, files: files, opts: opts, log: opts.Logger, source: files,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novaedge_config_reloads_total",
			Help: "Configuration changes by result: applied, unchanged or rejected.",
		}, []string{"result"}),
		hash: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "novaedge_config_hash",
			Help: "1 for the hash of the configuration serving.",
		}, []string{"hash"}),
	}
	for _, res := range []string{Applied, Unchanged, Rejected} {
		r.reloads.WithLabelValues(res)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.reloads, r.hash)
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

// Reload loads the resource files and applies them if they changed. The
// report says what happened; err is non-nil when the change was rejected.
func (r *Reloader) Reload(ctx context.Context) (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.files == nil {
		return r.finish(Report{Source: SourceFiles, At: time.Now(), Hash: r.hash0(), Problems: []string{"no resource files to reload"}}, time.Time{}, nil)
	}
	return r.apply(ctx, SourceFiles, r.files, "", nil)
}

// Push applies a whole resource set given as YAML documents, if the
// running configuration's hash is ifMatch ("" or "*": whatever runs). It
// serves until the next change; a reload from the files replaces it.
func (r *Reloader) Push(ctx context.Context, files []configs.File, ifMatch string) (Report, error) {
	for i := range files {
		if files[i].Dir == "" {
			files[i].Dir = r.opts.PushDir
			if files[i].Dir == "" {
				files[i].Dir = "."
			}
		}
	}
	load := Documents(files, r.opts.IsBundled)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apply(ctx, SourcePush, load, ifMatch, nil)
}

// RebuildPolicy builds the plugin of the policy called name
// ("namespace/name", or "name" if no other namespace has one) anew: its
// module is read again and it starts in fresh VMs, whether or not anything
// changed. The rest of the configuration is loaded again from where the
// running one came from.
func (r *Reloader) RebuildPolicy(ctx context.Context, name string) (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	full, err := r.policyName(name)
	if err != nil {
		return Report{Source: SourcePlugin, At: time.Now(), Hash: r.hash0()}, err
	}
	return r.apply(ctx, SourcePlugin, r.source, "", []string{full})
}

func (r *Reloader) policyName(name string) (string, error) {
	snap := r.gw.Snapshot()
	if snap == nil {
		return "", fmt.Errorf("%w: %q (nothing serves)", ErrNoPolicy, name)
	}
	var found, all []string
	for _, p := range snap.Policies {
		full := p.Metadata.Namespace + "/" + p.Metadata.Name
		all = append(all, full)
		if full == name || !strings.Contains(name, "/") && p.Metadata.Name == name {
			found = append(found, full)
		}
	}
	switch len(found) {
	case 0:
		if len(all) == 0 {
			return "", fmt.Errorf("%w: %q (the configuration has no policies)", ErrNoPolicy, name)
		}
		return "", fmt.Errorf("%w: %q (the policies are %s)", ErrNoPolicy, name, strings.Join(all, ", "))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %q is ambiguous (%s): name it as namespace/name", ErrNoPolicy, name, strings.Join(found, ", "))
}

func (r *Reloader) hash0() string {
	if cur := r.gw.Snapshot(); cur != nil {
		return cur.Hash
	}
	return ""
}

// apply loads and applies a change; r.mu is held.
func (r *Reloader) apply(ctx context.Context, source string, load Loader, ifMatch string, rebuild []string) (Report, error) {
	start := time.Now()
	rep := Report{Source: source, At: start, Hash: r.hash0()}
	if ifMatch != "" && ifMatch != "*" && ifMatch != rep.Hash {
		return r.finish(rep, start, ErrPrecondition)
	}
	snap, err := load()
	switch {
	case err != nil:
		rep.Problems = ProblemLines(err)
	case snap.Hash == rep.Hash && rebuild == nil:
		rep.Result = Unchanged
		r.source = load
	default:
		if r.opts.Notice != nil {
			r.opts.Notice(snap)
		}
		if err = r.gw.ApplyWith(ctx, snap, proxy.ApplyOptions{Rebuild: rebuild}); err != nil {
			rep.Problems = []string{err.Error()}
		} else {
			rep.Result, rep.Hash = Applied, snap.Hash
			r.source = load
			r.Serving()
		}
	}
	return r.finish(rep, start, nil)
}

// finish records, logs and counts a change's report.
func (r *Reloader) finish(rep Report, start time.Time, pre error) (Report, error) {
	if !start.IsZero() {
		rep.Took = time.Since(start).Round(time.Microsecond).String()
	}
	if pre != nil {
		// Refused before anything was loaded: not a reload.
		rep.Result = Rejected
		rep.Problems = []string{pre.Error()}
		r.log.Warn("configuration change refused", "source", rep.Source, "problem", pre.Error())
		return rep, pre
	}
	if rep.Problems != nil {
		rep.Result = Rejected
		for _, p := range rep.Problems {
			r.log.Error("configuration change rejected; the running configuration keeps serving", "source", rep.Source, "problem", p)
		}
		rj := rep
		r.lastRejected = &rj
	} else {
		r.log.Info("configuration change", "source", rep.Source, "result", rep.Result, "hash", rep.Hash, "took", rep.Took)
	}
	r.reloads.WithLabelValues(rep.Result).Inc()
	r.last = rep
	if rep.Result == Rejected {
		return rep, &RejectedError{Problems: rep.Problems}
	}
	return rep, nil
}

// RejectedError is the error of a rejected change.
type RejectedError struct{ Problems []string }

func (e *RejectedError) Error() string {
	msg := "configuration change rejected: " + e.Problems[0]
	if n := len(e.Problems); n > 1 {
		msg += fmt.Sprintf(" (and %d more)", n-1)
	}
	return msg
}

// Last returns the last change's report (zero before any).
func (r *Reloader) Last() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// LastRejected returns the last rejected change's report, if any.
func (r *Reloader) LastRejected() (Report, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastRejected == nil {
		return Report{}, false
	}
	return *r.lastRejected, true
}

// ProblemLines lists an error's problems, a line each: every problem of
// a configs.Problems, else the error itself.
func ProblemLines(err error) []string {
	var ps configs.Problems
	if !errors.As(err, &ps) {
		return []string{err.Error()}
	}
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, p.String())
	}
	return lines
}
