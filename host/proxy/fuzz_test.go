package proxy

import (
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCleanPath checks that path normalization is idempotent and leaves no
// dot segments or empty segments a route could be bypassed with.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"", "/", "/a/../b", "//x//y/", "/./.", "/..", "/a/b/../../../c", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := cleanPath(p)
		if !strings.HasPrefix(c, "/") {
			t.Fatalf("cleanPath(%q) = %q: not absolute", p, c)
		}
		if again := cleanPath(c); again != c {
			t.Fatalf("not idempotent: %q → %q → %q", p, c, again)
		}
		for _, seg := range strings.Split(strings.Trim(c, "/"), "/") {
			if seg == "." || seg == ".." || (seg == "" && c != "/") {
				t.Fatalf("cleanPath(%q) = %q keeps segment %q", p, c, seg)
			}
		}
	})
}

// FuzzForwardedFor checks that walking X-Forwarded-For never panics and
// attributes the request either to the peer or to an address the header
// holds.
func FuzzForwardedFor(f *testing.F) {
	f.Add("10.0.0.1", "1.2.3.4, 10.0.0.2")
	f.Add("10.0.0.1", "junk,,, ::1")
	f.Add("192.0.2.1", "")
	tn := parseTrusted([]string{"10.0.0.0/8", "::1/128"})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := tn.clientAddr(p, []string{xff})
		if got == p.Unmap() {
			return
		}
		found := false
		for _, part := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil && a.Unmap() == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %s is neither the peer %s nor in %q", got, p, xff)
		}
	})
}

// FuzzHopHeaders checks that no hop-by-hop header, nor any header the
// Connection header names, survives, except the protected ones a
// Connection token may not remove; and that the upgrade and TE: trailers
// information is kept.
func FuzzHopHeaders(f *testing.F) {
	f.Add("close, X-Secret", "X-Secret", "v")
	f.Add("upgrade", "Upgrade", "websocket")
	f.Add(",,keep-alive ,", "Keep-Alive", "5")
	f.Add("X-Request-Id", "X-Request-Id", "id")
	f.Add("upgrade, http2-settings", "HTTP2-Settings", "AAA")
	f.Add("TE, upgrade, upgrade", "Upgrade", "websocket")
	f.Fuzz(func(t *testing.T, conn, name, value string) {
		h := http.Header{}
		h["Connection"] = []string{conn}
		h.Set(name, value)
		h["Te"] = []string{"trailers"}
		up := h.Get("Upgrade")
		hi := removeHopHeaders(h)
		if !hi.teTrailers {
			t.Fatal("TE: trailers lost")
		}
		names := strings.Split(strings.ToLower(conn), ",")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		if slices.Contains(names, "upgrade") && hi.upgrade != up {
			t.Fatalf("upgrade %q, want %q", hi.upgrade, up)
		}
		for _, k := range hopHeaders {
			if _, ok := h[k]; ok {
				t.Fatalf("%s survived", k)
			}
		}
		for _, tok := range strings.Split(conn, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			protected := protectedHeaders[textproto.CanonicalMIMEHeaderKey(tok)]
			if !protected && h.Get(tok) != "" {
				t.Fatalf("header %q named by Connection survived", tok)
			}
			if protected && textproto.CanonicalMIMEHeaderKey(tok) == textproto.CanonicalMIMEHeaderKey(name) &&
				value != "" && h.Get(name) != value {
				t.Fatalf("protected header %q removed", name)
			}
		}
	})
}

// FuzzAllowedUpgrade checks the Upgrade filter: what it keeps is a
// subset of what was offered, allowed, and never h2c.
func FuzzAllowedUpgrade(f *testing.F) {
	f.Add("websocket", "websocket")
	f.Add("h2c, websocket", "websocket,h2c")
	f.Add("foo/2 , WebSocket,,", "foo")
	f.Fuzz(func(t *testing.T, upgrade, allowed string) {
		list := strings.Split(strings.ToLower(allowed), ",")
		got := allowedUpgrade(upgrade, list)
		if got == "" {
			return
		}
		for _, p := range strings.Split(got, ", ") {
			name, _, _ := strings.Cut(p, "/")
			if strings.EqualFold(name, "h2c") {
				t.Fatalf("h2c kept from %q", upgrade)
			}
			if !slices.Contains(list, strings.ToLower(name)) {
				t.Fatalf("%q kept, not allowed by %q", p, allowed)
			}
			if !strings.Contains(upgrade, p) {
				t.Fatalf("%q was not offered in %q", p, upgrade)
			}
		}
	})
}

// FuzzNormalizeHost checks the host normalization used for routing.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"API.example.com:8080", "[::1]:80", "[::1]", "example.com.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		h := normalizeHost(host)
		if strings.ContainsAny(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("normalizeHost(%q) = %q: not lower case", host, h)
		}
		if !strings.HasPrefix(strings.ToLower(host), strings.ToLower(strings.TrimSuffix(h, "."))) && utf8.ValidString(host) {
			t.Fatalf("normalizeHost(%q) = %q: not a prefix of the host", host, h)
		}
		if normalizeHost(h) != h && !strings.Contains(h, ":") {
			t.Fatalf("not idempotent: %q → %q → %q", host, h, normalizeHost(h))
		}
	})
}
