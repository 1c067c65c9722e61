package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// withoutDoc drops from a YAML stream the documents containing s.
func withoutDoc(stream, s string) string {
	var keep []string
	for _, d := range strings.Split(stream, "---\n") {
		if !strings.Contains(d, s) {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, "---\n")
}

// TestRedactionRoundTrip: GET /config (JSON and YAML) shows no secret;
// the YAML PUT back unchanged, with If-Match, is a no-op that keeps the
// KeyAuth policy and its key; the set minus the KeyAuth policy is refused
// without a write token, and from a foreign Host; a stale placeholder is
// 422 naming the field; no log line shows a secret.
func TestRedactionRoundTrip(t *testing.T) {
	a := startTestAdmin(t, Access{TokensFile: writeTokens(t)})
	running := a.gw.Snapshot()
	secrets := []string{testAPIKey, testHMAC, testJWKK}
	get := func(path string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", a.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
		}
		return string(b), resp.Header.Get("ETag")
	}
	js, etag := get("/config")
	ym, yetag := get("/config?format=yaml")
	st, _ := get("/status")
	metrics, _ := get("/metrics")
	if etag != `"`+running.Hash+`"` || yetag != etag {
		t.Errorf("ETags %s %s, want the running hash %s", etag, yetag, running.Hash)
	}
	for name, body := range map[string]string{"JSON": js, "YAML": ym, "/status": st, "/metrics": metrics} {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET /config (%s) shows the secret %q", name, s)
			}
		}
		if strings.HasPrefix(name, "/") {
			continue
		}
		if strings.Count(body, "<redacted:hmac-sha256:") != 3 {
			t.Errorf("GET /config (%s): want 3 placeholders:\n%s", name, body)
		}
	}
	var shown struct{ Hash string }
	if err := json.Unmarshal([]byte(js), &shown); err != nil || shown.Hash != running.Hash {
		t.Errorf("JSON hash %q, %v", shown.Hash, err)
	}

	put := func(body string, hdr ...string) (int, string) {
		t.Helper()
		return a.call(nil, "PUT", "/config", body, append([]string{"Content-Type", "application/yaml"}, hdr...)...)
	}
	keyAuthKept := func(when string) {
		t.Helper()
		p := a.gw.Snapshot().Policy("ns", "keys")
		if p == nil || p.Spec.KeyAuth.Keys[0].Key != testAPIKey {
			t.Fatalf("%s: the KeyAuth policy or its key is gone", when)
		}
	}

	// Unchanged, conditional on what was read: a no-op.
	code, body := put(ym, "Authorization", "Bearer "+writeToken, "If-Match", etag)
	if code != 200 || !strings.Contains(body, `"result": "unchanged"`) || a.gw.Snapshot().Hash != running.Hash {
		t.Fatalf("PUT of GET /config?format=yaml: %d %s", code, body)
	}
	keyAuthKept("after the round trip")

	// The attack of the finding: the set minus the KeyAuth policy.
	minus := withoutDoc(ym, "name: keys")
	if minus == ym {
		t.Fatal("the KeyAuth policy is not in the YAML")
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"no credentials", nil, 401},
		{"read token", []string{"Authorization", "Bearer " + readToken}, 403},
		{"write token, foreign Host", []string{"Authorization", "Bearer " + writeToken, "Host", "attacker.example:9901"}, 421},
		{"write token, cross-origin", []string{"Authorization", "Bearer " + writeToken, "Origin", "http://attacker.example"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := put(minus, tc.hdr...); code != tc.want {
				t.Errorf("PUT minus KeyAuth = %d, want %d: %s", code, tc.want, body)
			}
			keyAuthKept(tc.name)
		})
	}

	// A placeholder of another process (or a secret changed since).
	const stalePH = "key: <redacted:hmac-sha256:0000000000000000>"
	i := strings.Index(ym, "key: <redacted:hmac-sha256:")
	stale := ym[:i] + stalePH + ym[i+len(stalePH):]
	code, body = put(stale, "Authorization", "Bearer "+writeToken)
	if code != 422 || !strings.Contains(body, "ProxyPolicy ns/keys: spec.keyAuth.keys[0].key: the redacted placeholder matches no secret") {
		t.Errorf("PUT with a stale placeholder: %d %s", code, body)
	}
	keyAuthKept("after a stale placeholder")

	// A rejected change with a new key in clear: the key is not logged.
	bad := strings.Replace(ym, "      - consumer: web\n", "      - consumer: new\n        key: k-new-secret-0123456789\n      - consumer: web\n", 1) + "---\nkind: Nope\n"
	if bad == ym+"---\nkind: Nope\n" {
		t.Fatal("no key added")
	}
	if code, body := put(bad, "Authorization", "Bearer "+writeToken); code != 422 || !strings.Contains(body, "Nope") || strings.Contains(body, "k-new-secret") {
		t.Errorf("PUT of a bad set: %d %s", code, body)
	}

	// The write token may remove the policy: the refusals above were the
	// access rules.
	if code, body := put(minus, "Authorization", "Bearer "+writeToken, "If-Match", etag); code != 200 || !strings.Contains(body, `"result": "applied"`) {
		t.Fatalf("PUT minus KeyAuth with the write token: %d %s", code, body)
	}
	if a.gw.Snapshot().Policy("ns", "keys") != nil {
		t.Error("the KeyAuth policy is still there")
	}
	logs := a.logs.String()
	for _, s := range append(secrets, "k-new-secret-0123456789", writeToken, readToken) {
		if strings.Contains(logs, s) {
			t.Errorf("the log shows %q", s)
		}
	}
}
