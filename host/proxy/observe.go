package proxy

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/upstream"
)

// buildObserve makes the observability of each gateway of the snapshot
// that asks for some (accessLog, tracing): the generation keeps them and
// closes them when it is retired.
func (st *state) buildObserve(snap *configs.Snapshot) error {
	g := st.g
	for _, gw := range snap.Gateways {
		al, tr := gw.Spec.AccessLog, gw.Spec.Tracing
		var sink *observe.Sink
		if al != nil && al.Enabled {
			sink = g.accessSink()
		}
		name := gw.Metadata.Namespace + "/" + gw.Metadata.Name
		og, err := observe.NewGateway(name, al, tr, sink)
		if err != nil {
			return err
		}
		if og == nil {
			continue
		}
		if st.obs == nil {
			st.obs = map[*configs.Gateway]*observe.Gateway{}
		}
		st.obs[gw] = og
		if n := observe.TracingNotice(tr); n != "" {
			g.log.Info("tracing without export", "gateway", name, "detail", n)
		} else if og.HasTracer() {
			g.log.Info("tracing", "gateway", name, "endpoint", observe.TracingEndpoint(tr))
		}
	}
	st.observed = g.opts.Metrics != nil || len(st.obs) > 0
	return nil
}

// portObserve is the observability of a port's requests that match no
// listener's hostname: that of the first of its listeners' gateways that
// has some.
func (st *state) portObserve(ls []*listenerRoutes) *observe.Gateway {
	for _, l := range ls {
		if og := st.obs[l.gateway]; og != nil {
			return og
		}
	}
	return nil
}

// flushGrace bounds how long a retired generation's tracers may take to
// export the spans they hold.
const flushGrace = 5 * time.Second

// closeObserve flushes and stops the generation's tracers in the
// background; Gateway.Shutdown waits for it.
func (st *state) closeObserve() {
	if len(st.obs) == 0 {
		return
	}
	obs := st.obs
	st.g.flushes.Add(1)
	go func() {
		defer st.g.flushes.Done()
		ctx, cancel := context.WithTimeout(context.Background(), flushGrace)
		defer cancel()
		for _, og := range obs {
			if err := og.Close(ctx); err != nil {
				st.g.log.Warn("tracing: spans not exported", "gateway", og.Name(), "error", err)
			}
		}
	}()
}

// accessSink returns the writer of access log lines, started on first
// use. Called with g.mu held.
func (g *Gateway) accessSink() *observe.Sink {
	if g.sink == nil {
		w := g.opts.AccessLog
		if w == nil {
			w = os.Stdout
		}
		g.sink = observe.NewSink(w, g.opts.Metrics)
	}
	return g.sink
}

// closeObservers waits, within ctx, for the retired generations' spans to
// be exported, then writes the access log lines still queued.
func (g *Gateway) closeObservers(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		g.flushes.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	g.mu.Lock()
	s := g.sink
	g.sink = nil
	g.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// connState counts client connections for the metrics.
func (g *Gateway) connState(_ net.Conn, cs http.ConnState) {
	m := g.opts.Metrics
	if m == nil {
		return
	}
	switch cs {
	case http.StateNew:
		m.ConnOpened()
	case http.StateClosed, http.StateHijacked:
		m.ConnClosed()
	}
}

// backendStatuses reports the running generation's backends, named
// "namespace/name", for the metrics.
func (g *Gateway) backendStatuses() []upstream.BackendStatus {
	st := g.acquire()
	if st == nil {
		return nil
	}
	defer st.release()
	out := make([]upstream.BackendStatus, 0, len(st.order))
	for _, k := range st.order {
		bs := st.backends[k].Status()
		if !strings.Contains(bs.Name, "/") {
			bs.Name = k
		}
		out = append(out, bs)
	}
	return out
}

// rejected records on the request's record that policy i of the
// chain answered or failed closed.
func (cr *chainRun) rejected(i int) {
	if cr.rec != nil && i >= 0 && i < len(cr.policies) {
		cr.rec.SetRejectedBy(cr.policies[i].name())
	}
}
