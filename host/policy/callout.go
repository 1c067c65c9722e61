package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// maxCalloutBody bounds a callout response body held for a plugin.
const maxCalloutBody = 4 << 20

// Caller carries plugins' HTTP callouts (proxy_http_call): to a
// ProxyBackend of the running configuration by name ("name" or
// "namespace/name"), or to an absolute http(s) URL given as the upstream.
type Caller struct {
	// Gateway is the gateway whose backends callouts reach; set it before
	// traffic flows.
	Gateway *proxy.Gateway
	// Client reaches URL upstreams (default: a client with no redirects).
	Client *http.Client
}

// Call implements wasm.HTTPCaller.
func (c *Caller) Call(ctx context.Context, call wasm.HTTPCallRequest) (wasm.HTTPCallResponse, error) {
	if call.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, call.Timeout)
		defer cancel()
	}
	method, path, authority := http.MethodGet, "/", ""
	h := http.Header{}
	for _, kv := range call.Headers {
		switch kv[0] {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority":
			authority = kv[1]
		case ":scheme":
		default:
			h.Add(kv[0], kv[1])
		}
	}
	var resp *http.Response
	var err error
	if strings.HasPrefix(call.Upstream, "http://") || strings.HasPrefix(call.Upstream, "https://") {
		req, rerr := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(call.Upstream, "/")+path, bytes.NewReader(call.Body))
		if rerr != nil {
			return wasm.HTTPCallResponse{}, rerr
		}
		req.Header = h
		if authority != "" {
			req.Host = authority
		}
		client := c.Client
		if client == nil {
			client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		resp, err = client.Do(req)
	} else {
		if c.Gateway == nil {
			return wasm.HTTPCallResponse{}, errors.New("no gateway to call through")
		}
		req, rerr := http.NewRequestWithContext(ctx, method, "http://upstream"+path, bytes.NewReader(call.Body))
		if rerr != nil {
			return wasm.HTTPCallResponse{}, rerr
		}
		req.Header = h
		req.Host = authority
		if len(call.Body) == 0 {
			req.Body = http.NoBody
		}
		resp, err = c.Gateway.CallBackend(ctx, call.Upstream, req)
	}
	if err != nil {
		return wasm.HTTPCallResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCalloutBody+1))
	if err != nil {
		return wasm.HTTPCallResponse{}, err
	}
	if len(body) > maxCalloutBody {
		return wasm.HTTPCallResponse{}, fmt.Errorf("callout response body over %d bytes", maxCalloutBody)
	}
	out := wasm.HTTPCallResponse{Status: resp.StatusCode, Body: body}
	for k, vv := range resp.Header {
		for _, v := range vv {
			out.Headers = append(out.Headers, [2]string{strings.ToLower(k), v})
		}
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			out.Trailers = append(out.Trailers, [2]string{strings.ToLower(k), v})
		}
	}
	return out, nil
}

var _ wasm.HTTPCaller = (*Caller)(nil)
