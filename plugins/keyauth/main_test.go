package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/sdk/sdktest"
)

func hash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func config(t *testing.T, c Config) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var keys = []Key{
	{SHA256: hash("alice-key-0123456789"), Consumer: "alice"},
	{SHA256: strings.ToUpper(hash("bob-key-0123456789")), Consumer: "bob"},
}

func TestKeyAuth(t *testing.T) {
	type want struct {
		status   int               // 0: went upstream
		upstream map[string]string // "" means absent
		consumer string            // the keyauth.consumer property
	}
	hdr := func(kv ...string) [][2]string {
		var h [][2]string
		for i := 0; i+1 < len(kv); i += 2 {
			h = append(h, [2]string{kv[i], kv[i+1]})
		}
		return h
	}
	base := Config{Keys: keys}
	withQuery := Config{Keys: keys, Query: "api_key"}
	hidden := Config{Keys: keys, Query: "api_key", HideCredentials: true}
	custom := Config{Keys: keys, Header: "Authorization-Key", ConsumerHeader: "X-Client"}
	tests := []struct {
		name string
		cfg  Config
		req  sdktest.Request
		want want
	}{
		{"valid key", base, sdktest.Request{Headers: hdr("x-api-key", "alice-key-0123456789")},
			want{upstream: map[string]string{"x-api-key": "alice-key-0123456789", "x-consumer": "alice"}, consumer: "alice"}},
		{"header name case-insensitive, hash case-insensitive", base, sdktest.Request{Headers: hdr("X-Api-Key", "bob-key-0123456789")},
			want{upstream: map[string]string{"x-consumer": "bob"}, consumer: "bob"}},
		{"missing key", base, sdktest.Request{}, want{status: 401}},
		{"empty key", base, sdktest.Request{Headers: hdr("x-api-key", "")}, want{status: 401}},
		{"unknown key", base, sdktest.Request{Headers: hdr("x-api-key", "mallory")}, want{status: 401}},
		{"a key's prefix is not the key", base, sdktest.Request{Headers: hdr("x-api-key", "alice-key-012345678")}, want{status: 401}},
		{"a hash is not a key", base, sdktest.Request{Headers: hdr("x-api-key", hash("alice-key-0123456789"))}, want{status: 401}},
		{"client's consumer header is replaced", base, sdktest.Request{Headers: hdr("x-consumer", "admin", "x-api-key", "alice-key-0123456789", "X-Consumer", "root")},
			want{upstream: map[string]string{"x-consumer": "alice"}, consumer: "alice"}},
		{"query not read unless configured", base, sdktest.Request{Path: "/a?api_key=alice-key-0123456789"}, want{status: 401}},
		{"key in query", withQuery, sdktest.Request{Path: "/a?x=1&api_key=alice-key-0123456789"},
			want{upstream: map[string]string{":path": "/a?x=1&api_key=alice-key-0123456789", "x-consumer": "alice"}, consumer: "alice"}},
		{"escaped key in query", withQuery, sdktest.Request{Path: "/a?api%5Fkey=alice%2Dkey-0123456789"},
			want{upstream: map[string]string{"x-consumer": "alice"}, consumer: "alice"}},
		{"header first", withQuery, sdktest.Request{Path: "/a?api_key=nope", Headers: hdr("x-api-key", "bob-key-0123456789")},
			want{upstream: map[string]string{"x-consumer": "bob"}, consumer: "bob"}},
		{"unknown key in query", withQuery, sdktest.Request{Path: "/a?api_key=nope"}, want{status: 401}},
		{"hideCredentials: header removed", hidden, sdktest.Request{Path: "/a?x=1", Headers: hdr("x-api-key", "alice-key-0123456789")},
			want{upstream: map[string]string{"x-api-key": "", ":path": "/a?x=1", "x-consumer": "alice"}, consumer: "alice"}},
		{"hideCredentials: query parameter removed", hidden, sdktest.Request{Path: "/a?x=1&api_key=alice-key-0123456789&y=2"},
			want{upstream: map[string]string{":path": "/a?x=1&y=2", "x-consumer": "alice"}, consumer: "alice"}},
		{"hideCredentials: only parameter removed with its ?", hidden, sdktest.Request{Path: "/a?api_key=alice-key-0123456789"},
			want{upstream: map[string]string{":path": "/a"}, consumer: "alice"}},
		{"hideCredentials: both copies removed", hidden, sdktest.Request{Path: "/a?api_key=other", Headers: hdr("x-api-key", "bob-key-0123456789")},
			want{upstream: map[string]string{":path": "/a", "x-api-key": "", "x-consumer": "bob"}, consumer: "bob"}},
		{"CORS preflight passes without a key", base, sdktest.Request{Method: "OPTIONS", Headers: hdr("origin", "https://app.example.com", "access-control-request-method", "POST", "x-consumer", "admin")},
			want{upstream: map[string]string{"x-consumer": ""}}},
		{"OPTIONS without preflight headers needs a key", base, sdktest.Request{Method: "OPTIONS", Headers: hdr("origin", "https://app.example.com")}, want{status: 401}},
		{"custom headers", custom, sdktest.Request{Headers: hdr("authorization-key", "alice-key-0123456789", "x-consumer", "kept")},
			want{upstream: map[string]string{"x-client": "alice", "x-consumer": "kept"}, consumer: "alice"}},
		{"custom header: default header not read", custom, sdktest.Request{Headers: hdr("x-api-key", "alice-key-0123456789")}, want{status: 401}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := sdktest.Start(t, plugin, config(t, tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			res := h.Do(tc.req, sdktest.Response{})
			if tc.want.status != 0 {
				if res.Local == nil || res.Local.Status != tc.want.status {
					t.Fatalf("want a local %d, got %+v", tc.want.status, res)
				}
				l := res.Local
				if l.Headers.Get("www-authenticate") != "ApiKey" || l.Headers.Get("content-type") != "application/json" {
					t.Errorf("401 headers: %v", l.Headers)
				}
				var body struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal([]byte(l.Body), &body); err != nil || body.Status != 401 || body.Error == "" {
					t.Errorf("body %q: %v", l.Body, err)
				}
				if strings.Contains(l.Body, "alice") || strings.Contains(l.Body, "bob") {
					t.Errorf("body names a consumer: %s", l.Body)
				}
				if v, err := h.Emulator().GetProperty(ConsumerProperty); err == nil && len(v) > 0 {
					t.Errorf("consumer property set on a 401: %q", v)
				}
				return
			}
			if res.Local != nil || res.Paused {
				t.Fatalf("request did not go upstream: %+v", res)
			}
			for name, want := range tc.want.upstream {
				if got := res.Upstream.Get(name); got != want || (want == "" && res.Upstream.Has(name)) {
					t.Errorf("upstream %s = %q, want %q (%v)", name, got, want, res.Upstream)
				}
				if n := len(res.Upstream.Values(name)); n > 1 {
					t.Errorf("upstream %s sent %d times", name, n)
				}
			}
			v, _ := h.Emulator().GetProperty(ConsumerProperty)
			if string(v) != tc.want.consumer {
				t.Errorf("keyauth.consumer = %q, want %q", v, tc.want.consumer)
			}
		})
	}
}

func TestDenyMessages(t *testing.T) {
	h, err := sdktest.Start(t, plugin, config(t, Config{Keys: keys}))
	if err != nil {
		t.Fatal(err)
	}
	missing := h.Do(sdktest.Request{Headers: [][2]string{{"x-request-id", "r1"}}}, sdktest.Response{})
	unknown := h.Do(sdktest.Request{Headers: [][2]string{{"x-request-id", "r2"}, {"x-api-key", "nope"}}}, sdktest.Response{})
	if missing.Local == nil || missing.Local.Body != `{"error":"API key required","status":401,"request_id":"r1"}` {
		t.Errorf("missing: %+v", missing.Local)
	}
	if unknown.Local == nil || unknown.Local.Body != `{"error":"invalid API key","status":401,"request_id":"r2"}` {
		t.Errorf("unknown: %+v", unknown.Local)
	}
}

func TestBadConfig(t *testing.T) {
	good := hash("k")
	tests := []struct{ config, want string }{
		{`{}`, "keys: at least one key"},
		{`{"keys": []}`, "keys: at least one key"},
		{`{"keys": [{"sha256": "abc", "consumer": "a"}]}`, "keys[0].sha256"},
		{`{"keys": [{"sha256": "` + strings.Repeat("g", 64) + `", "consumer": "a"}]}`, "keys[0].sha256"},
		{`{"keys": [{"sha256": "` + good + `"}]}`, "keys[0].consumer: required"},
		{`{"keys": [{"sha256": "` + good + `", "consumer": "a\r\nb"}]}`, "keys[0].consumer"},
		{`{"keys": [{"sha256": "` + good + `", "consumer": "a"}, {"sha256": "` + strings.ToUpper(good) + `", "consumer": "b"}]}`, "keys[1]: the same key as keys[0]"},
		{`{"keys": [{"sha256": "` + good + `", "consumer": "a"}], "header": "X API"}`, "header:"},
		{`{"keys": [{"sha256": "` + good + `", "consumer": "a"}], "consumerHeader": "a:b"}`, "consumerHeader:"},
		{`{"keys": [{"sha256": "` + good + `", "consumer": "a"}], "query": "a=b"}`, "query:"},
		{`{"keys": [{"key": "plain", "consumer": "a"}]}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := sdktest.Start(t, plugin, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRemoveQuery(t *testing.T) {
	for _, tc := range [][3]string{
		{"/a", "k", "/a"},
		{"/a?k=1", "k", "/a"},
		{"/a?k=1&k=2", "k", "/a"},
		{"/a?x=1&k=1", "k", "/a?x=1"},
		{"/a?kk=1&k", "k", "/a?kk=1"},
		{"/a?%6B=1&x", "k", "/a?x"},
		{"/a?x=%", "k", "/a?x=%"},
	} {
		if got := removeQuery(tc[0], tc[1]); got != tc[2] {
			t.Errorf("removeQuery(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
