package apigateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Service is one demo service: its name and the address it listens on.
type Service struct {
	Name string
	Addr string
}

// Services returns the demo services the example's backends point at.
func Services() []Service {
	return []Service{
		{Name: "users", Addr: "127.0.0.1:18081"},
		{Name: "orders", Addr: "127.0.0.1:18082"},
		{Name: "products", Addr: "127.0.0.1:18083"},
	}
}

// shutdownGrace bounds a graceful stop; requests still running after it
// (a slow or sse request) are cancelled and their connections closed.
const shutdownGrace = 5 * time.Second

// StartServices binds every service's address and serves NewService(name)
// on it until stop is called or ctx is done. If an address cannot be bound
// it returns an error naming the service and the address, and nothing is
// left running. stop shuts the servers down gracefully (at most about 5s)
// and returns when they are all stopped; it may be called more than once.
// A nil logger discards the logs.
func StartServices(ctx context.Context, svcs []Service, logger *slog.Logger) (stop func(), err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lns := make([]net.Listener, 0, len(svcs))
	for _, s := range svcs {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("demo service %q: %w", s.Name, err) // names the address
		}
		lns = append(lns, ln)
	}

	// Requests see base: cancelling it ends slow and sse requests that
	// outlive the grace period.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	servers := make([]*http.Server, len(svcs))
	var wg sync.WaitGroup
	for i, s := range svcs {
		log := logger.With("service", s.Name, "addr", lns[i].Addr().String())
		srv := &http.Server{
			Handler:           NewService(s.Name),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers[i] = srv
		wg.Add(1)
		go func(ln net.Listener) {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("demo service stopped", "err", err)
			}
		}(lns[i])
		log.Info("demo service listening")
	}

	shutdown := sync.OnceFunc(func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var swg sync.WaitGroup
		for i, srv := range servers {
			swg.Add(1)
			go func() {
				defer swg.Done()
				if err := srv.Shutdown(sctx); err != nil {
					logger.Warn("demo service: graceful stop timed out, closing", "service", svcs[i].Name, "err", err)
					cancelBase()
					_ = srv.Close()
				}
			}()
		}
		swg.Wait()
		cancelBase()
		wg.Wait()
	})
	unregister := context.AfterFunc(ctx, shutdown)
	return func() { unregister(); shutdown() }, nil
}
