package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

// reverseproxyMain is the hidden subcommand `loadbench reverseproxy -addr
// ADDR -target URL [-policies]`: the reference line, a bare but tuned
// httputil.ReverseProxy, to measure the gateway against what the standard
// library does with no features at all; with -policies, behind the Go
// middleware of the "+3" policies (withPolicies).
func reverseproxyMain(args []string) int {
	fs := flag.NewFlagSet("loadbench reverseproxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	target := fs.String("target", "", "upstream URL (http://host:port)")
	policies := fs.Bool("policies", false, "apply CORS, the security headers and a rate limit per API key as Go middleware")
	_ = fs.Parse(args)
	u, err := url.Parse(*target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "loadbench reverseproxy: -target %q: want http://host:port\n", *target)
		return 2
	}
	var h http.Handler = newReverseProxy(u)
	if *policies {
		h = withPolicies(h, newKeyLimiter(rateLimitPerSec, rateLimitPerSec))
	}
	return serve("reverseproxy", *addr, h)
}

func newReverseProxy(target *url.URL) *httputil.ReverseProxy {
	transport := &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded() // what any real proxy does; the gateway does too
		},
		Transport:  transport,
		BufferPool: newBufferPool(32 << 10),
		ErrorLog:   log.New(os.Stderr, "loadbench reverseproxy: ", log.LstdFlags),
	}
}

// bufferPool is an httputil.BufferPool of fixed-size buffers.
type bufferPool struct{ pool sync.Pool }

func newBufferPool(size int) *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}}}
}

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

var _ httputil.BufferPool = (*bufferPool)(nil)
