// Command securityheaders is NovaEdge's SecurityHeaders policy: it adds
// security headers (HSTS, X-Frame-Options, Content-Security-Policy, …) to
// responses and may remove headers that reveal the backend's software.
// See README.md.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// Config is the plugin's configuration: the wire format the host sends
// (firstparty.SecurityHeaders: a ProxyPolicy's spec.securityHeaders, as
// is), with the plugin's own Validate.
type Config firstparty.SecurityHeaders

// HSTS configures Strict-Transport-Security.
type HSTS = firstparty.HSTS

// The values the enumerated headers accept.
var (
	xFrameOptions    = []string{"DENY", "SAMEORIGIN"}
	referrerPolicies = []string{
		"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
		"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
	}
	openerPolicies   = []string{"same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"}
	embedderPolicies = []string{"require-corp", "credentialless", "unsafe-none"}
	resourcePolicies = []string{"same-site", "same-origin", "cross-origin"}
)

// minPreloadMaxAge is the smallest max-age the HSTS preload list accepts
// (one year).
const minPreloadMaxAge = 31536000

// Validate checks the configuration: a typo is an error, not a header
// browsers ignore.
func (c *Config) Validate() error {
	if h := c.HSTS; h != nil && h.Enabled {
		switch {
		case h.MaxAge <= 0:
			return errors.New("hsts.maxAge: required when hsts is enabled (seconds; 31536000 is one year)")
		case h.Preload && (!h.IncludeSubDomains || h.MaxAge < minPreloadMaxAge):
			return errors.New("hsts.preload: the preload list requires includeSubDomains and maxAge of at least 31536000")
		}
	} else if h != nil && h.MaxAge < 0 {
		return errors.New("hsts.maxAge: must not be negative")
	}
	for _, e := range []struct {
		field, value string
		allowed      []string
	}{
		{"xFrameOptions", c.XFrameOptions, xFrameOptions},
		{"referrerPolicy", c.ReferrerPolicy, referrerPolicies},
		{"crossOriginOpenerPolicy", c.CrossOriginOpenerPolicy, openerPolicies},
		{"crossOriginEmbedderPolicy", c.CrossOriginEmbedderPolicy, embedderPolicies},
		{"crossOriginResourcePolicy", c.CrossOriginResourcePolicy, resourcePolicies},
	} {
		if e.value != "" && !contains(e.allowed, e.value) {
			return errors.New(e.field + ": unknown value " + strconv.Quote(e.value) + " (want " + strings.Join(e.allowed, ", ") + ")")
		}
	}
	for _, f := range []struct{ field, value string }{
		{"contentSecurityPolicy", c.ContentSecurityPolicy},
		{"permissionsPolicy", c.PermissionsPolicy},
	} {
		if strings.ContainsAny(f.value, "\r\n\x00") {
			return errors.New(f.field + ": a header value cannot contain line breaks or NUL")
		}
	}
	for i, h := range c.RemoveHeaders {
		if !sdk.ValidHeaderName(h) {
			return errors.New("removeHeaders[" + strconv.Itoa(i) + "]: " + strconv.Quote(h) + " is not a header name")
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// policy is a configuration made ready to apply.
type policy struct {
	hsts     string      // Strict-Transport-Security value, "" if off
	headers  [][2]string // the other headers to set
	remove   []string
	override bool
	free     sdk.Filters[filter] // ended requests' filters, for reuse
}

func start(cfg *Config) (sdk.NewFilter, error) {
	p := &policy{override: cfg.Override}
	if h := cfg.HSTS; h != nil && h.Enabled {
		p.hsts = "max-age=" + strconv.FormatInt(h.MaxAge, 10)
		if h.IncludeSubDomains {
			p.hsts += "; includeSubDomains"
		}
		if h.Preload {
			p.hsts += "; preload"
		}
	}
	add := func(name, value string) {
		if value != "" {
			p.headers = append(p.headers, [2]string{name, value})
		}
	}
	add("x-frame-options", cfg.XFrameOptions)
	if cfg.XContentTypeOptions {
		add("x-content-type-options", "nosniff")
	}
	add("referrer-policy", cfg.ReferrerPolicy)
	add("content-security-policy", cfg.ContentSecurityPolicy)
	add("permissions-policy", cfg.PermissionsPolicy)
	add("cross-origin-opener-policy", cfg.CrossOriginOpenerPolicy)
	add("cross-origin-embedder-policy", cfg.CrossOriginEmbedderPolicy)
	add("cross-origin-resource-policy", cfg.CrossOriginResourcePolicy)
	for _, h := range cfg.RemoveHeaders {
		p.remove = append(p.remove, strings.ToLower(h))
	}
	return p.newFilter, nil
}

// newFilter returns a filter for a request: one that an ended request
// left, or a new one. A TinyGo guest pays dearly for every allocation (its
// allocator and collector walk the heap), so a request makes none of its
// own.
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

type filter struct {
	sdk.BaseFilter
	p     *policy
	https bool
}

func (f *filter) OnRequest(r *sdk.Request) sdk.Action {
	// The scheme matters only for HSTS: no read (and no copy into the
	// guest) without it.
	f.https = f.p.hsts != "" && strings.EqualFold(r.Scheme(), "https")
	return sdk.Continue
}

func (f *filter) OnResponse(r *sdk.Response) sdk.Action {
	p := f.p
	for _, name := range p.remove {
		r.RemoveHeader(name)
	}
	if f.https && p.hsts != "" {
		f.set(r, "strict-transport-security", p.hsts)
	}
	for _, h := range p.headers {
		f.set(r, h[0], h[1])
	}
	return sdk.Continue
}

// set sets a header unless the backend sent its own and override is off.
func (f *filter) set(r *sdk.Response, name, value string) {
	if !f.p.override && r.HasHeader(name) {
		return
	}
	r.SetHeader(name, value)
}

// heapReserve grows the VM's heap at start (sdk.Plugin.HeapReserve): the
// collector then runs rarely.
const heapReserve = 512 << 10

var plugin = sdk.Plugin[Config]{Name: "securityheaders", Start: start, HeapReserve: heapReserve}

func main() { sdk.Run(plugin) }
