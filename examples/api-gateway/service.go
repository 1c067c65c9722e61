package apigateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds of the demo endpoints, so that a typo cannot pin a connection for
// long.
const (
	maxSlow      = 10 * time.Second
	defaultSlow  = time.Second
	maxEvents    = 1000
	defaultEvent = 5
	eventPeriod  = 100 * time.Millisecond
)

// Echo is the JSON body a demo service answers with: what it received.
type Echo struct {
	Service    string            `json:"service"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Host       string            `json:"host"`
	Headers    map[string]string `json:"headers"`
	BodyBytes  int64             `json:"body_bytes"`
	RemoteAddr string            `json:"remote_addr"`
}

// NewService returns the handler of the demo service name. It answers:
//
//	GET /healthz                      200 {"status":"ok"}
//	/api/v1/<x>/slow?ms=N             sleeps N ms (default 1000, at most
//	                                  10000; ends early if the client goes),
//	                                  then echoes
//	/api/v1/<x>/status/NNN            echoes with status NNN (200–599)
//	GET /api/v1/<x>/sse?n=N           streams N server-sent events (default
//	                                  5, at most 1000), one every 100ms
//	anything else                     200 and the request echoed as JSON
//	                                  (see Echo); the body is read and counted
//
// Multi-valued headers are echoed joined with ", ".
func NewService(name string) http.Handler {
	return &service{name: name}
}

type service struct{ name string }

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	// /api/v1/<x>/<action>[/<arg>]
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(seg) >= 4 && seg[0] == "api" && seg[1] == "v1" {
		switch {
		case len(seg) == 4 && seg[3] == "slow":
			s.slow(w, r)
			return
		case len(seg) == 5 && seg[3] == "status":
			s.status(w, r, seg[4])
			return
		case len(seg) == 4 && seg[3] == "sse":
			s.sse(w, r)
			return
		}
	}
	s.echo(w, r, http.StatusOK)
}

// echo reads the body and answers with the request described as JSON.
func (s *service) echo(w http.ResponseWriter, r *http.Request, status int) {
	n, _ := io.Copy(io.Discard, r.Body) // count what arrived, even if cut short
	e := Echo{
		Service:    s.name,
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.RawQuery,
		Host:       r.Host,
		Headers:    make(map[string]string, len(r.Header)),
		BodyBytes:  n,
		RemoteAddr: r.RemoteAddr,
	}
	for k, v := range r.Header {
		e.Headers[k] = strings.Join(v, ", ")
	}
	writeJSON(w, status, e)
}

func (s *service) slow(w http.ResponseWriter, r *http.Request) {
	d := defaultSlow
	if v := r.URL.Query().Get("ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSlow {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ms=%q: want 0 to %d", v, maxSlow.Milliseconds()))
			return
		}
		d = time.Duration(ms) * time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		s.echo(w, r, http.StatusOK)
	case <-r.Context().Done():
		// The client (or the gateway's request timeout) gave up: nobody
		// is left to answer.
	}
}

func (s *service) status(w http.ResponseWriter, r *http.Request, code string) {
	n, err := strconv.Atoi(code)
	if err != nil || n < 200 || n > 599 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want 200 to 599", code))
		return
	}
	s.echo(w, r, n)
}

func (s *service) sse(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	n := defaultEvent
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 || n > maxEvents {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("n=%q: want 0 to %d", v, maxEvents))
			return
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return // no streaming possible: the client sees the headers only
	}
	tick := time.NewTicker(eventPeriod)
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
		data, _ := json.Marshal(struct {
			Service string `json:"service"`
			Seq     int    `json:"seq"`
			Time    string `json:"time"`
		}{s.name, i, time.Now().UTC().Format(time.RFC3339Nano)})
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: %s\n\n", i, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encoding the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status) // these statuses carry no body
		return
	}
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
