package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/reload"
)

// MaxPushBytes bounds a resource set pushed to PUT /config.
const MaxPushBytes = 16 << 20

// SetReloader enables the endpoints that change the configuration:
// POST /reload, PUT /config and POST /plugins/…/reload.
func (s *Server) SetReloader(r *reload.Reloader) { s.reloader.Store(r) }

func (s *Server) reloaderOr501(w http.ResponseWriter) *reload.Reloader {
	r := s.reloader.Load()
	if r == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "configuration changes are not enabled"})
	}
	return r
}

// writeReport answers a change: 200 applied or unchanged, 422 rejected
// with every problem; the ETag is the hash serving afterwards.
func writeReport(w http.ResponseWriter, rep reload.Report, err error) {
	if rep.Hash != "" {
		w.Header().Set("ETag", `"`+rep.Hash+`"`)
	}
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// reload serves POST /reload: load the resource files again.
func (s *Server) reload(w http.ResponseWriter, req *http.Request) {
	if r := s.reloaderOr501(w); r != nil {
		rep, err := r.Reload(req.Context())
		writeReport(w, rep, err)
	}
}

// lastReload serves GET /reload: the last change's report.
func (s *Server) lastReload(w http.ResponseWriter, req *http.Request) {
	if r := s.reloaderOr501(w); r != nil {
		writeJSON(w, http.StatusOK, r.Last())
	}
}

// putConfig serves PUT /config: the body is a whole resource set (YAML
// documents), which replaces the running configuration if it is valid and
// its policies build. If-Match (the ETag of GET /config) makes the change
// conditional on the configuration it was based on: 412 if another change
// came first. Without If-Match (or with "*") it replaces whatever runs.
func (s *Server) putConfig(w http.ResponseWriter, req *http.Request) {
	r := s.reloaderOr501(w)
	if r == nil {
		return
	}
	ifMatch := strings.TrimSpace(req.Header.Get("If-Match"))
	if ifMatch != "" && ifMatch != "*" {
		tag, ok := parseETag(ifMatch)
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "If-Match: want one quoted ETag or *"})
			return
		}
		ifMatch = tag
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxPushBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("a resource set is at most %d bytes", MaxPushBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the body: " + err.Error()})
		return
	}
	// The secrets GET /config showed as placeholders are the running ones.
	f, err := s.redactor.Restore(configs.File{Name: "PUT /config", Data: body}, s.gw.Snapshot())
	if err != nil {
		rep := reload.Report{Result: reload.Rejected, Source: reload.SourcePush, At: time.Now()}
		if cur := s.gw.Snapshot(); cur != nil {
			rep.Hash = cur.Hash
		}
		rep.Problems = reload.ProblemLines(err)
		s.log.Warn("configuration change refused", "source", rep.Source, "problems", len(rep.Problems), "problem", rep.Problems[0])
		writeReport(w, rep, err)
		return
	}
	rep, err := r.Push(req.Context(), []configs.File{f}, ifMatch)
	if errors.Is(err, reload.ErrPrecondition) {
		w.Header().Set("ETag", `"`+rep.Hash+`"`)
		writeJSON(w, http.StatusPreconditionFailed, rep)
		return
	}
	writeReport(w, rep, err)
}

// parseETag returns the hash in a strong ETag ("hash"); weak ones
// (W/"…") never match a configuration, as RFC 9110 has for If-Match.
func parseETag(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || strings.ContainsAny(s[1:len(s)-1], `",`) {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// reloadPlugin serves POST /plugins/{namespace}/{name}/reload and
// POST /plugins/{name}/reload: build a policy's plugin anew (its module read
// again, fresh VMs). 404 for no such policy.
func (s *Server) reloadPlugin(w http.ResponseWriter, req *http.Request) {
	r := s.reloaderOr501(w)
	if r == nil {
		return
	}
	name := req.PathValue("name")
	if ns := req.PathValue("namespace"); ns != "" {
		name = ns + "/" + name
	}
	rep, err := r.RebuildPolicy(req.Context(), name)
	if errors.Is(err, reload.ErrNoPolicy) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	writeReport(w, rep, err)
}

// reloadStatus is the part of /status about changes.
type reloadStatus struct {
	Last         *reload.Report `json:"last,omitempty"`
	LastRejected *reload.Report `json:"lastRejected,omitempty"`
}

func (s *Server) reloadStatus() *reloadStatus {
	r := s.reloader.Load()
	if r == nil {
		return nil
	}
	var rs reloadStatus
	if last := r.Last(); !last.At.IsZero() {
		rs.Last = &last
	}
	if rj, ok := r.LastRejected(); ok {
		rs.LastRejected = &rj
	}
	return &rs
}
