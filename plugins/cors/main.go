// Command cors is NovaEdge's CORS policy: it answers browsers' preflight
// requests itself and adds the CORS headers to the responses of allowed
// origins. See README.md.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// Config is the plugin's configuration: the wire format the host sends
// (firstparty.CORS: a ProxyPolicy's spec.cors, with maxAge in seconds),
// with the plugin's own Validate.
type Config firstparty.CORS

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.AllowOrigins) == 0 {
		return errors.New("allowOrigins: at least one origin (or \"*\") is required")
	}
	for i, o := range c.AllowOrigins {
		if o == "*" {
			continue
		}
		scheme, host, ok := strings.Cut(o, "://")
		if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#") {
			return errors.New("allowOrigins[" + strconv.Itoa(i) + "]: " + strconv.Quote(o) + " is not an origin (scheme://host[:port])")
		}
		if strings.Contains(host, "*") && (!strings.HasPrefix(host, "*.") || strings.Count(host, "*") > 1 || len(host) < 3) {
			return errors.New("allowOrigins[" + strconv.Itoa(i) + "]: " + strconv.Quote(o) + ": a wildcard may only be the first label (https://*.example.com)")
		}
	}
	if c.MaxAgeSeconds < 0 {
		return errors.New("maxAgeSeconds: must not be negative")
	}
	return nil
}

// policy is a configuration made ready to match.
type policy struct {
	anyOrigin   bool
	exact       map[string]bool
	suffixes    [][2]string // scheme://, .domain[:port]
	methods     map[string]bool
	methodsList string
	headers     map[string]bool
	headersList string
	expose      string
	maxAge      string
	credentials bool
	free        sdk.Filters[filter] // ended requests' filters, for reuse
}

func start(cfg *Config) (sdk.NewFilter, error) {
	p := &policy{exact: map[string]bool{}, methods: map[string]bool{}, headers: map[string]bool{}, credentials: cfg.AllowCredentials}
	for _, o := range cfg.AllowOrigins {
		switch {
		case o == "*":
			p.anyOrigin = true
		case strings.Contains(o, "://*."):
			scheme, host, _ := strings.Cut(strings.ToLower(o), "://")
			p.suffixes = append(p.suffixes, [2]string{scheme + "://", host[1:]})
		default:
			p.exact[strings.ToLower(o)] = true
		}
	}
	methods := cfg.AllowMethods
	if len(methods) == 0 {
		methods = []string{"GET", "HEAD", "POST"}
	}
	for i, m := range methods {
		methods[i] = strings.ToUpper(m)
		p.methods[methods[i]] = true
	}
	p.methodsList = strings.Join(methods, ", ")
	for _, h := range cfg.AllowHeaders {
		p.headers[strings.ToLower(h)] = true
	}
	p.headersList = strings.Join(cfg.AllowHeaders, ", ")
	p.expose = strings.Join(cfg.ExposeHeaders, ", ")
	if cfg.MaxAgeSeconds > 0 {
		p.maxAge = strconv.Itoa(cfg.MaxAgeSeconds)
	}
	return p.newFilter, nil
}

// newFilter returns a filter for a request: one that an ended request
// left, or a new one. A TinyGo guest pays dearly for every allocation (its
// allocator and collector walk the heap), so an actual request makes none
// of its own.
func (p *policy) newFilter() sdk.Filter {
	if f := p.free.Get(); f != nil {
		return f
	}
	return &filter{p: p}
}

// OnDone puts the filter up for reuse.
func (f *filter) OnDone() {
	p := f.p
	*f = filter{p: p}
	p.free.Put(f)
}

// allowed reports whether origin may make cross-origin requests.
func (p *policy) allowed(origin string) bool {
	if p.anyOrigin {
		return true
	}
	o := strings.ToLower(origin)
	if p.exact[o] {
		return true
	}
	for _, s := range p.suffixes {
		// https://*.example.com matches https://a.example.com and
		// https://a.b.example.com, not https://example.com.
		if strings.HasPrefix(o, s[0]) && strings.HasSuffix(o, s[1]) && len(o) > len(s[0])+len(s[1]) {
			return true
		}
	}
	return false
}

// allowOrigin is the Access-Control-Allow-Origin value for an allowed
// origin: never "*" when credentials are allowed.
func (p *policy) allowOrigin(origin string) string {
	if p.anyOrigin && !p.credentials {
		return "*"
	}
	return origin
}

type filter struct {
	sdk.BaseFilter
	p      *policy
	origin string // an allowed Origin of an actual request
}

func (f *filter) OnRequest(r *sdk.Request) sdk.Action {
	origin := r.Header("origin")
	if origin == "" {
		return sdk.Continue // not a cross-origin request
	}
	reqMethod := r.Header("access-control-request-method")
	if reqMethod == "" || r.Method() != "OPTIONS" { // the method only when it may be a preflight
		if f.p.allowed(origin) {
			f.origin = origin
		}
		return sdk.Continue
	}
	return f.preflight(r, origin, reqMethod)
}

// preflight answers an OPTIONS request with Origin and
// Access-Control-Request-Method: 204 with the CORS headers, or 403 without
// any when the origin, the method or a header is not allowed.
func (f *filter) preflight(r *sdk.Request, origin, method string) sdk.Action {
	vary := [2]string{"vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
	p := f.p
	if !p.allowed(origin) {
		return r.Deny(403, "CORS: origin not allowed", vary)
	}
	if !p.methods[strings.ToUpper(method)] {
		return r.Deny(403, "CORS: method "+method+" not allowed", vary)
	}
	asked := r.Header("access-control-request-headers")
	allowHeaders := p.headersList
	if asked != "" {
		for _, h := range strings.Split(asked, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h != "" && len(p.headers) > 0 && !p.headers[h] {
				return r.Deny(403, "CORS: header "+h+" not allowed", vary)
			}
		}
		if len(p.headers) == 0 {
			allowHeaders = asked
		}
	}
	h := [][2]string{
		{"access-control-allow-origin", p.allowOrigin(origin)},
		{"access-control-allow-methods", p.methodsList},
		vary,
	}
	if allowHeaders != "" {
		h = append(h, [2]string{"access-control-allow-headers", allowHeaders})
	}
	if p.credentials {
		h = append(h, [2]string{"access-control-allow-credentials", "true"})
	}
	if p.maxAge != "" {
		h = append(h, [2]string{"access-control-max-age", p.maxAge})
	}
	return r.Respond(204, h, nil)
}

func (f *filter) OnResponse(r *sdk.Response) sdk.Action {
	addVary(r, "Origin")
	if f.origin == "" {
		return sdk.Continue
	}
	r.SetHeader("access-control-allow-origin", f.p.allowOrigin(f.origin))
	if f.p.credentials {
		r.SetHeader("access-control-allow-credentials", "true")
	}
	if f.p.expose != "" {
		r.SetHeader("access-control-expose-headers", f.p.expose)
	}
	return sdk.Continue
}

// addVary adds name to the response's Vary header unless it is there (or
// Vary is "*").
func addVary(r *sdk.Response, name string) {
	v := r.Header("vary")
	if v == "" {
		r.SetHeader("vary", name)
		return
	}
	for rest := v; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, ",")
		f = strings.TrimSpace(f)
		if f == "*" || strings.EqualFold(f, name) {
			return
		}
	}
	r.SetHeader("vary", v+", "+name)
}

// heapReserve grows the VM's heap at start (sdk.Plugin.HeapReserve): the
// collector then runs rarely.
const heapReserve = 512 << 10

var plugin = sdk.Plugin[Config]{Name: "cors", Start: start, HeapReserve: heapReserve}

func main() { sdk.Run(plugin) }
