package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// server is one bound address. Its socket lives as long as some
// generation has a listener on the address; the http.Server that serves
// it can be replaced (when the listener's client limits change) without
// closing the socket: new connections go to the new http.Server, the old
// one finishes its connections' requests and closes them.
type server struct {
	key    string
	ln     net.Listener
	limits limits

	cur  atomic.Pointer[feed] // where accepted connections go
	done chan struct{}        // the accept loop ended

	mu    sync.Mutex
	feeds map[*feed]struct{} // serving or draining
}

// limits are a listener's effective client limits.
type limits struct {
	readHeader, idle time.Duration
	maxHeaderBytes   int
}

func limitsOf(l configs.ClientLimits) limits {
	return limits{
		readHeader:     l.ReadHeaderTimeout.D(10 * time.Second),
		idle:           l.IdleTimeout.D(120 * time.Second),
		maxHeaderBytes: int(l.MaxHeaderBytes.B(60 << 10)),
	}
}

// feed is a net.Listener fed by a server's accept loop: one http.Server
// serves it.
type feed struct {
	addr   net.Addr
	srv    *http.Server
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	done   chan struct{} // Serve returned
}

func (f *feed) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *feed) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *feed) Addr() net.Addr { return f.addr }

// bind binds key; nothing is served until start.
func (g *Gateway) bind(key string, lim limits) (*server, error) {
	ln, err := net.Listen("tcp", key)
	if err != nil {
		return nil, err
	}
	s := &server{key: key, ln: ln, limits: lim, done: make(chan struct{}), feeds: map[*feed]struct{}{}}
	s.cur.Store(g.newFeed(s, lim))
	return s, nil
}

// newFeed returns an http.Server with the listener's client limits, serving
// a new feed of s.
func (g *Gateway) newFeed(s *server, lim limits) *feed {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	protos.SetHTTP2(true) // over TLS, by ALPN
	f := &feed{
		addr:   s.ln.Addr(),
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		srv: &http.Server{
			Handler:           &portHandler{g: g, key: s.key},
			ReadHeaderTimeout: lim.readHeader,
			IdleTimeout:       lim.idle,
			MaxHeaderBytes:    lim.maxHeaderBytes,
			Protocols:         &protos,
			ErrorLog:          log.New(slogWriter{g.log}, "", 0),
			ConnState:         g.connState,
		},
	}
	s.mu.Lock()
	s.feeds[f] = struct{}{}
	s.mu.Unlock()
	return f
}

// start serves s: its accept loop and its current http.Server.
func (g *Gateway) start(s *server) {
	g.log.Info("listening", "address", s.ln.Addr().String())
	g.serveFeed(s, s.cur.Load())
	go g.accept(s)
}

func (g *Gateway) serveFeed(s *server, f *feed) {
	go func() {
		defer close(f.done)
		if err := f.srv.Serve(f); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			g.log.Error("listener failed", "address", s.key, "error", err)
		}
		s.mu.Lock()
		delete(s.feeds, f)
		s.mu.Unlock()
	}()
}

// accept hands the socket's connections to the current feed until the
// socket is closed. Accept errors other than a closed socket (such as
// running out of file descriptors) back off, as net/http does.
func (g *Gateway) accept(s *server) {
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			g.log.Warn("accept failed; retrying", "address", s.key, "error", err, "in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c = g.wrapConn(s.key, c)
	hand:
		for {
			f := s.cur.Load()
			select {
			case f.conns <- c:
				break hand
			case <-f.closed:
				if s.cur.Load() == f { // shutting down: no one takes it
					c.Close()
					break hand
				}
			}
		}
	}
}

// setLimits replaces the http.Server of s with one of the new limits: new
// connections go to it; the old one closes its idle connections and its
// active ones after their current request, within grace.
func (g *Gateway) setLimits(s *server, lim limits, grace time.Duration) {
	s.limits = lim
	f := g.newFeed(s, lim)
	g.serveFeed(s, f)
	old := s.cur.Swap(f)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if old.srv.Shutdown(ctx) != nil {
			old.srv.Close()
		}
	}()
}

// stop closes the socket and shuts the servers of s down, letting their
// requests finish until ctx is done; then it closes what remains.
func (s *server) stop(ctx context.Context) error {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	feeds := make([]*feed, 0, len(s.feeds))
	for f := range s.feeds {
		feeds = append(feeds, f)
	}
	s.mu.Unlock()
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.srv.Shutdown(ctx); err != nil {
				f.srv.Close()
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			<-f.done
		}()
	}
	wg.Wait()
	return firstErr
}
