package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/novaedge/novaedge/host/upstream"
)

// ErrNoSuchBackend is returned by CallBackend for a name the running
// configuration does not have.
var ErrNoSuchBackend = errors.New("no such backend")

// CallBackend sends an out-of-band request (a plugin's HTTP callout) to a
// backend of the running configuration, named "namespace/name" or, if
// unique across namespaces, "name": an endpoint is picked as for any
// request, under the backend's circuit breaker. The caller closes the
// response body; the generation stays alive until it does.
func (g *Gateway) CallBackend(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	st := g.acquire()
	if st == nil {
		return nil, errors.New("gateway is shutting down")
	}
	be := st.backends[name]
	if be == nil && !strings.Contains(name, "/") {
		for _, k := range st.order {
			if _, n, _ := strings.Cut(k, "/"); n == name {
				if be != nil {
					st.release()
					return nil, fmt.Errorf("backend %q: ambiguous, name it as namespace/name", name)
				}
				be = st.backends[k]
			}
		}
	}
	if be == nil {
		st.release()
		return nil, fmt.Errorf("%w: %q", ErrNoSuchBackend, name)
	}
	release, err := be.Acquire(ctx)
	if err != nil {
		st.release()
		return nil, err
	}
	ep, err := be.Pick(0, nil)
	if err != nil {
		release()
		st.release()
		return nil, err
	}
	req = req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = "http", ep.Addr()
	req.URL = &u
	a := ep.Begin()
	start := time.Now()
	resp, err := be.Transport().RoundTrip(req)
	if err != nil {
		a.End(upstream.ConnectFailure, time.Since(start))
		release()
		st.release()
		return nil, err
	}
	result := upstream.Success
	if resp.StatusCode >= 500 {
		result = upstream.Failure
	}
	a.End(result, time.Since(start))
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { release(); st.release() }}
	return resp, nil
}

// releasingBody runs release once when the body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
