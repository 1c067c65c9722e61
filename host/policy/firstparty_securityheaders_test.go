package policy

import (
	"net/http"
	"strings"
	"testing"
)

// TestSecurityHeadersThroughGateway runs the bundled SecurityHeaders
// plugin: the configured headers reach the client (no HSTS: the gateway
// serves plain HTTP here), Server and X-Powered-By are removed, and the
// backend's own header wins unless override is set.
func TestSecurityHeadersThroughGateway(t *testing.T) {
	block := `  securityHeaders:
    hsts: {enabled: true, maxAge: 31536000, includeSubDomains: true, preload: true}
    xFrameOptions: DENY
    xContentTypeOptions: true
    referrerPolicy: strict-origin-when-cross-origin
    contentSecurityPolicy: "default-src 'self'"
    permissionsPolicy: "camera=()"
    crossOriginOpenerPolicy: same-origin
    crossOriginEmbedderPolicy: require-corp
    crossOriginResourcePolicy: same-site
    removeHeaders: [Server, X-Powered-By]
`
	e, err := setup(t, firstPartyDoc("sec", "SecurityHeaders", block))
	if err != nil {
		t.Fatal(err)
	}
	r, body := e.get(t, "X-Echo-Response-Header", "Server: nginx/1.25")
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, body)
	}
	for name, want := range map[string]string{
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "strict-origin-when-cross-origin",
		"Content-Security-Policy":      "default-src 'self'",
		"Permissions-Policy":           "camera=()",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Embedder-Policy": "require-corp",
		"Cross-Origin-Resource-Policy": "same-site",
		"Strict-Transport-Security":    "", // plain HTTP
		"Server":                       "",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	r, _ = e.get(t, "X-Echo-Response-Header", "X-Frame-Options: SAMEORIGIN")
	if got := r.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "SAMEORIGIN" {
		t.Errorf("the backend's X-Frame-Options did not win: %q", got)
	}

	t.Run("override", func(t *testing.T) {
		e, err := setup(t, firstPartyDoc("sec", "SecurityHeaders", "  securityHeaders: {xFrameOptions: DENY, override: true}\n"))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := e.get(t, "X-Echo-Response-Header", "X-Frame-Options: SAMEORIGIN")
		if got := r.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
			t.Errorf("X-Frame-Options = %q, want DENY", got)
		}
	})
}

// TestSecurityHeadersOnLocalResponses: a response another policy answers
// (a CORS preflight) gets the headers only from a SecurityHeaders policy
// that ran before it, given a lower priority.
func TestSecurityHeadersOnLocalResponses(t *testing.T) {
	cors := firstPartyDoc("cors", "CORS", "  cors: {allowOrigins: [\"https://app.example.com\"]}\n")
	for _, tc := range []struct {
		priority string
		want     string
	}{{"", ""}, {"  priority: -1\n", "DENY"}} {
		t.Run("priority"+strings.TrimSpace(tc.priority), func(t *testing.T) {
			sec := firstPartyDoc("sec", "SecurityHeaders", tc.priority+"  securityHeaders: {xFrameOptions: DENY}\n")
			e, err := setup(t, cors+sec)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("OPTIONS", e.base+"/hello", nil)
			req.Header.Set("Origin", "https://app.example.com")
			req.Header.Set("Access-Control-Request-Method", "GET")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 204 || resp.Header.Get("X-Frame-Options") != tc.want {
				t.Errorf("preflight: %d, X-Frame-Options %q, want %q", resp.StatusCode, resp.Header.Get("X-Frame-Options"), tc.want)
			}
		})
	}
}
