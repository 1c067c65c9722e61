package main

import (
	"strings"
	"testing"

	"github.com/novaedge/novaedge/sdk/sdktest"
)

const reference = `{
  "allowOrigins": ["https://app.example.com", "https://admin.example.com", "https://*.preview.example.com"],
  "allowMethods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  "allowHeaders": ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
  "exposeHeaders": ["X-Request-ID", "X-RateLimit-Remaining"],
  "maxAgeSeconds": 86400,
  "allowCredentials": true
}`

func preflight(origin, method, headers string) sdktest.Request {
	h := [][2]string{{"origin", origin}, {"access-control-request-method", method}}
	if headers != "" {
		h = append(h, [2]string{"access-control-request-headers", headers})
	}
	return sdktest.Request{Method: "OPTIONS", Path: "/api/v1/users", Headers: h}
}

func TestPreflight(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     sdktest.Request
		status  int
		headers map[string]string // "" means absent
	}{
		{"allowed origin and method", preflight("https://app.example.com", "POST", "Authorization, content-type"), 204, map[string]string{
			"access-control-allow-origin":      "https://app.example.com",
			"access-control-allow-methods":     "GET, POST, PUT, PATCH, DELETE, OPTIONS",
			"access-control-allow-headers":     "Authorization, Content-Type, X-API-Key, X-Request-ID",
			"access-control-allow-credentials": "true",
			"access-control-max-age":           "86400",
			"vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		}},
		{"wildcard subdomain", preflight("https://pr-12.preview.example.com", "GET", ""), 204, map[string]string{
			"access-control-allow-origin": "https://pr-12.preview.example.com",
		}},
		{"wildcard does not match the bare domain", preflight("https://preview.example.com", "GET", ""), 403, map[string]string{
			"access-control-allow-origin": "",
		}},
		{"wildcard does not match a lookalike", preflight("https://evilpreview.example.com", "GET", ""), 403, map[string]string{
			"access-control-allow-origin": "",
		}},
		{"other scheme", preflight("http://app.example.com", "GET", ""), 403, map[string]string{
			"access-control-allow-origin": "",
		}},
		{"disallowed origin: 403, no CORS headers", preflight("https://evil.example.org", "GET", ""), 403, map[string]string{
			"access-control-allow-origin":      "",
			"access-control-allow-methods":     "",
			"access-control-allow-credentials": "",
			"vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		}},
		{"method not allowed", preflight("https://app.example.com", "TRACE", ""), 403, map[string]string{
			"access-control-allow-origin": "",
		}},
		{"header not allowed", preflight("https://app.example.com", "GET", "x-secret"), 403, map[string]string{
			"access-control-allow-origin": "",
		}},
		{"origin case-insensitive", preflight("HTTPS://APP.EXAMPLE.COM", "get", ""), 204, map[string]string{
			"access-control-allow-origin": "HTTPS://APP.EXAMPLE.COM",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(tc.req, sdktest.Response{})
			if res.Local == nil {
				t.Fatal("preflight went upstream")
			}
			if res.Local.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.Local.Status, tc.status, res.Local.Body)
			}
			for k, want := range tc.headers {
				if got := res.Local.Headers.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestActualRequests(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("allowed origin gets CORS headers", func(t *testing.T) {
		res := h.Do(sdktest.Request{Headers: [][2]string{{"origin", "https://admin.example.com"}}},
			sdktest.Response{Headers: [][2]string{{"vary", "Accept-Encoding"}}})
		d := res.Downstream
		if d.Get("access-control-allow-origin") != "https://admin.example.com" || d.Get("access-control-allow-credentials") != "true" ||
			d.Get("access-control-expose-headers") != "X-Request-ID, X-RateLimit-Remaining" || d.Get("vary") != "Accept-Encoding, Origin" {
			t.Errorf("headers %v", d)
		}
	})
	t.Run("disallowed origin: no CORS headers, Vary still", func(t *testing.T) {
		res := h.Do(sdktest.Request{Headers: [][2]string{{"origin", "https://evil.example.org"}}}, sdktest.Response{})
		if res.Local != nil {
			t.Fatal("an actual request was answered")
		}
		if d := res.Downstream; d.Has("access-control-allow-origin") || d.Get("vary") != "Origin" {
			t.Errorf("headers %v", d)
		}
	})
	t.Run("no Origin: Vary only", func(t *testing.T) {
		res := h.Do(sdktest.Request{}, sdktest.Response{Headers: [][2]string{{"vary", "origin"}}})
		if d := res.Downstream; d.Has("access-control-allow-origin") || d.Get("vary") != "origin" {
			t.Errorf("headers %v", d)
		}
	})
	t.Run("an OPTIONS without Access-Control-Request-Method goes upstream", func(t *testing.T) {
		res := h.Do(sdktest.Request{Method: "OPTIONS", Headers: [][2]string{{"origin", "https://app.example.com"}}}, sdktest.Response{})
		if res.Local != nil || res.Downstream.Get("access-control-allow-origin") != "https://app.example.com" {
			t.Errorf("%+v", res)
		}
	})
}

func TestAnyOrigin(t *testing.T) {
	t.Run("without credentials: *", func(t *testing.T) {
		h, err := sdktest.Start(t, plugin, `{"allowOrigins": ["*"]}`)
		if err != nil {
			t.Fatal(err)
		}
		res := h.Do(preflight("https://x.test", "POST", "x-anything, x-else"), sdktest.Response{})
		l := res.Local
		if l == nil || l.Status != 204 || l.Headers.Get("access-control-allow-origin") != "*" ||
			l.Headers.Get("access-control-allow-methods") != "GET, HEAD, POST" ||
			l.Headers.Get("access-control-allow-headers") != "x-anything, x-else" || l.Headers.Has("access-control-allow-credentials") {
			t.Errorf("%+v", l)
		}
	})
	t.Run("with credentials: the origin, never *", func(t *testing.T) {
		h, err := sdktest.Start(t, plugin, `{"allowOrigins": ["*"], "allowCredentials": true}`)
		if err != nil {
			t.Fatal(err)
		}
		res := h.Do(sdktest.Request{Headers: [][2]string{{"origin", "https://x.test"}}}, sdktest.Response{})
		if got := res.Downstream.Get("access-control-allow-origin"); got != "https://x.test" {
			t.Errorf("allow-origin %q", got)
		}
	})
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`{}`, "allowOrigins: at least one"},
		{`{"allowOrigins": ["app.example.com"]}`, "is not an origin"},
		{`{"allowOrigins": ["https://a.*.example.com"]}`, "wildcard may only be the first label"},
		{`{"allowOrigins": ["https://x"], "maxAgeSeconds": -1}`, "maxAgeSeconds"},
		{`{"allowOrigins": ["https://x"], "maxAge": 5}`, `unknown field "maxAge"`},
	} {
		_, err := sdktest.Start(t, plugin, tc.config)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.config, err, tc.want)
		}
	}
}

// TestRequestsInSequence: requests one after the other on one VM (the
// later ones on filters the earlier ones left): an allowed origin's
// headers never reach a later request without one, or with another.
func TestRequestsInSequence(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, origin string
		want         string // Access-Control-Allow-Origin, "" none
	}{
		{"allowed", "https://app.example.com", "https://app.example.com"},
		{"no origin", "", ""},
		{"allowed again", "https://admin.example.com", "https://admin.example.com"},
		{"disallowed", "https://evil.example.org", ""},
		{"preview subdomain", "https://a.preview.example.com", "https://a.preview.example.com"},
		{"no origin again", "", ""},
	} {
		var hdr [][2]string
		if tc.origin != "" {
			hdr = [][2]string{{"origin", tc.origin}}
		}
		d := h.Do(sdktest.Request{Headers: hdr}, sdktest.Response{}).Downstream
		if got := d.Get("access-control-allow-origin"); got != tc.want || d.Has("access-control-expose-headers") != (tc.want != "") {
			t.Errorf("%s: headers %v, want Access-Control-Allow-Origin %q", tc.name, d, tc.want)
		}
	}
}

// TestVary: Origin is added to the backend's Vary unless it is there (in
// any case) or Vary is "*".
func TestVary(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, vary, want string }{
		{"none", "", "Origin"},
		{"other", "Accept-Encoding", "Accept-Encoding, Origin"},
		{"two others", "Accept-Encoding,Accept-Language", "Accept-Encoding,Accept-Language, Origin"},
		{"there", "Accept-Encoding, Origin", "Accept-Encoding, Origin"},
		{"there in lower case, first", "origin ,Accept", "origin ,Accept"},
		{"star", "*", "*"},
		{"star among others", "Accept, *", "Accept, *"},
		{"empty fields", "Accept,,", "Accept,,, Origin"},
		{"a longer name", "Origins", "Origins, Origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr [][2]string
			if tc.vary != "" {
				hdr = [][2]string{{"vary", tc.vary}}
			}
			res := h.Do(sdktest.Request{Headers: [][2]string{{"origin", "https://app.example.com"}}}, sdktest.Response{Headers: hdr})
			if got := res.Downstream.Get("vary"); got != tc.want {
				t.Errorf("Vary %q, want %q", got, tc.want)
			}
		})
	}
}
