package policy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/host/proxy"
)

// firstPartyDoc is a ProxyPolicy of a first-party type on the test route.
func firstPartyDoc(name, typ, block string) string {
	return `---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: ` + name + `, namespace: t}
spec:
  type: ` + typ + `
  targetRef: {kind: ProxyRoute, name: r}
` + block
}

// TestCORSThroughGateway runs the bundled CORS plugin as the reference
// configures it: a preflight is answered by the gateway (the backend never
// sees it), an actual request gets the CORS headers.
func TestCORSThroughGateway(t *testing.T) {
	e, err := setup(t, firstPartyDoc("cors", "CORS", `  cors:
    allowOrigins: ["https://app.example.com"]
    allowMethods: [GET, POST]
    allowHeaders: [Authorization, Content-Type]
    exposeHeaders: [X-Request-ID]
    maxAge: 86400s
    allowCredentials: true
`))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("OPTIONS", e.base+"/hello", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Max-Age") != "86400" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if e.backend.count() != 0 {
		t.Error("the preflight reached the backend")
	}

	req.Header.Set("Origin", "https://evil.example.org")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(string(body), `"status":403`) {
		t.Errorf("disallowed preflight: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	r, _ := e.get(t, "Origin", "https://app.example.com")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Expose-Headers") != "X-Request-ID" || r.Header.Get("Vary") != "Origin" {
		t.Errorf("actual request: %d %v", r.StatusCode, r.Header)
	}
}

// TestBundledHeapReserve: the bundled header policies' VMs start with
// their heap grown (sdk.Plugin.HeapReserve, 512 KiB: TinyGo's collector
// then runs rarely) and serve requests without growing further; a plugin
// that does not ask for a reserve (KeyAuth) gets none.
func TestBundledHeapReserve(t *testing.T) {
	for _, tc := range benchPolicies {
		t.Run(tc.name, func(t *testing.T) {
			p := buildPolicy(t, "heap", tc.typ, tc.block)
			runRequests(t, p, tc.hdr, 200)
			mem := p.(proxy.StatsReporter).Stats().MemoryBytes
			if reserve := tc.typ != "KeyAuth"; reserve && (mem < 1<<20 || mem > 2<<20) {
				t.Errorf("guest memory %d bytes, want 1 MiB (a 512 KiB reserve; more means the heap grew)", mem)
			} else if !reserve && mem >= 1<<20 {
				t.Errorf("guest memory %d bytes, want less than 1 MiB (no reserve)", mem)
			}
		})
	}
}
