package main

import (
	"strings"
	"testing"

	"github.com/novaedge/novaedge/sdk/sdktest"
)

// reference is the reference configuration's block, plus the optional
// headers.
const reference = `{
  "hsts": {"enabled": true, "maxAge": 31536000, "includeSubDomains": true, "preload": true},
  "xFrameOptions": "DENY",
  "xContentTypeOptions": true,
  "referrerPolicy": "strict-origin-when-cross-origin",
  "contentSecurityPolicy": "default-src 'self'",
  "permissionsPolicy": "camera=(), geolocation=()",
  "crossOriginOpenerPolicy": "same-origin",
  "crossOriginEmbedderPolicy": "require-corp",
  "crossOriginResourcePolicy": "same-site",
  "removeHeaders": ["Server", "X-Powered-By"]
}`

var all = map[string]string{
	"strict-transport-security":    "max-age=31536000; includeSubDomains; preload",
	"x-frame-options":              "DENY",
	"x-content-type-options":       "nosniff",
	"referrer-policy":              "strict-origin-when-cross-origin",
	"content-security-policy":      "default-src 'self'",
	"permissions-policy":           "camera=(), geolocation=()",
	"cross-origin-opener-policy":   "same-origin",
	"cross-origin-embedder-policy": "require-corp",
	"cross-origin-resource-policy": "same-site",
}

func TestHeaders(t *testing.T) {
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		config string
		req    sdktest.Request
		resp   sdktest.Response
		want   map[string]string // "" means absent
	}{
		{"https: every header", reference, sdktest.Request{Scheme: "https"}, sdktest.Response{}, all},
		{"http: no HSTS", reference, sdktest.Request{}, sdktest.Response{},
			with(all, "strict-transport-security", "")},
		{"Server and X-Powered-By removed", reference, sdktest.Request{Scheme: "https"},
			sdktest.Response{Headers: [][2]string{{"server", "nginx/1.25"}, {"x-powered-by", "PHP/8"}, {"x-other", "kept"}}},
			with(all, "server", "", "x-powered-by", "", "x-other", "kept")},
		{"the backend's own header wins", reference, sdktest.Request{Scheme: "https"},
			sdktest.Response{Headers: [][2]string{{"x-frame-options", "SAMEORIGIN"}, {"Content-Security-Policy", "default-src *"}, {"strict-transport-security", "max-age=60"}}},
			with(all, "x-frame-options", "SAMEORIGIN", "content-security-policy", "default-src *", "strict-transport-security", "max-age=60")},
		{"override replaces the backend's header", `{"xFrameOptions": "DENY", "hsts": {"enabled": true, "maxAge": 600}, "override": true}`, sdktest.Request{Scheme: "https"},
			sdktest.Response{Headers: [][2]string{{"x-frame-options", "SAMEORIGIN"}, {"strict-transport-security", "max-age=60"}}},
			map[string]string{"x-frame-options": "DENY", "strict-transport-security": "max-age=600"}},
		{"only what is configured", `{"xContentTypeOptions": true}`, sdktest.Request{Scheme: "https"},
			sdktest.Response{Headers: [][2]string{{"server", "nginx"}}},
			map[string]string{"x-content-type-options": "nosniff", "server": "nginx", "x-frame-options": "", "strict-transport-security": "", "referrer-policy": ""}},
		{"hsts disabled", `{"hsts": {"enabled": false, "maxAge": 600}}`, sdktest.Request{Scheme: "https"}, sdktest.Response{},
			map[string]string{"strict-transport-security": ""}},
		{"hsts without options", `{"hsts": {"enabled": true, "maxAge": 600}}`, sdktest.Request{Scheme: "HTTPS"}, sdktest.Response{},
			map[string]string{"strict-transport-security": "max-age=600"}},
		{"error responses too", `{"xFrameOptions": "SAMEORIGIN"}`, sdktest.Request{}, sdktest.Response{Status: 502},
			map[string]string{"x-frame-options": "SAMEORIGIN"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := sdktest.Start(t, plugin, tc.config)
			if err != nil {
				t.Fatal(err)
			}
			res := h.Do(tc.req, tc.resp)
			if res.Local != nil || res.Paused {
				t.Fatalf("request did not go upstream: %+v", res)
			}
			for name, want := range tc.want {
				if got := res.Downstream.Get(name); got != want || (want == "" && res.Downstream.Has(name)) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
				if n := len(res.Downstream.Values(name)); n > 1 {
					t.Errorf("%s sent %d times", name, n)
				}
			}
		})
	}
}

func TestRequestUntouched(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference)
	if err != nil {
		t.Fatal(err)
	}
	res := h.Do(sdktest.Request{Headers: [][2]string{{"server", "client"}}}, sdktest.Response{})
	if res.Upstream.Get("server") != "client" || res.Upstream.Has("x-frame-options") {
		t.Errorf("request headers changed: %v", res.Upstream)
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct{ config, want string }{
		{`{"xFrameOptions": "ALLOW"}`, "xFrameOptions: unknown value \"ALLOW\""},
		{`{"xFrameOptions": "deny"}`, "xFrameOptions: unknown value"},
		{`{"referrerPolicy": "strict-origin-when-crossorigin"}`, "referrerPolicy: unknown value"},
		{`{"crossOriginOpenerPolicy": "same"}`, "crossOriginOpenerPolicy: unknown value"},
		{`{"crossOriginEmbedderPolicy": "require-cors"}`, "crossOriginEmbedderPolicy: unknown value"},
		{`{"crossOriginResourcePolicy": "same_site"}`, "crossOriginResourcePolicy: unknown value"},
		{`{"hsts": {"enabled": true}}`, "hsts.maxAge: required"},
		{`{"hsts": {"enabled": true, "maxAge": -5}}`, "hsts.maxAge: required"},
		{`{"hsts": {"maxAge": -5}}`, "hsts.maxAge: must not be negative"},
		{`{"hsts": {"enabled": true, "maxAge": 600, "preload": true, "includeSubDomains": true}}`, "hsts.preload"},
		{`{"hsts": {"enabled": true, "maxAge": 31536000, "preload": true}}`, "hsts.preload"},
		{`{"contentSecurityPolicy": "a\r\nb"}`, "contentSecurityPolicy: a header value cannot contain"},
		{`{"permissionsPolicy": "a\nb"}`, "permissionsPolicy: a header value cannot contain"},
		{`{"removeHeaders": ["X Powered"]}`, "removeHeaders[0]"},
		{`{"removeHeaders": [""]}`, "removeHeaders[0]"},
		{`{"xFrameOption": "DENY"}`, "unknown field"},
		{`{"removeHeaders": true}`, "configuration:"},
	}
	for _, tc := range tests {
		t.Run(tc.config, func(t *testing.T) {
			_, err := sdktest.Start(t, plugin, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEmptyConfig(t *testing.T) {
	h, err := sdktest.Start(t, plugin, ``)
	if err != nil {
		t.Fatal(err)
	}
	res := h.Do(sdktest.Request{Scheme: "https"}, sdktest.Response{Headers: [][2]string{{"server", "x"}}})
	if len(res.Downstream) != 2 { // :status, server
		t.Errorf("headers added: %v", res.Downstream)
	}
}

// TestSchemeInSequence: HSTS goes only on responses to HTTPS requests,
// whatever the requests before on the same VM were; without HSTS the
// scheme plays no part.
func TestSchemeInSequence(t *testing.T) {
	for _, cfg := range []struct {
		name, config string
		hsts         bool
	}{
		{"hsts", reference, true},
		{"no hsts", `{"xFrameOptions": "DENY"}`, false},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			h, err := sdktest.Start(t, plugin, cfg.config)
			if err != nil {
				t.Fatal(err)
			}
			for _, scheme := range []string{"https", "http", "https", "https", "http", "HTTPS"} {
				d := h.Do(sdktest.Request{Scheme: scheme}, sdktest.Response{}).Downstream
				want := cfg.hsts && strings.EqualFold(scheme, "https")
				if d.Has("strict-transport-security") != want || d.Get("x-frame-options") != "DENY" {
					t.Errorf("%s: headers %v, want HSTS %v", scheme, d, want)
				}
			}
		})
	}
}
