package cache

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestCache(t testing.TB, size int64, now *time.Time) *Cache {
	t.Helper()
	c, err := New(Config{MaxSize: size, MaxEntrySize: size / 4, Policy: Policy{DefaultTTL: time.Minute, MaxTTL: time.Hour}, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func response(req http.Header, resp http.Header, body string) *Response {
	if req == nil {
		req = http.Header{}
	}
	if resp == nil {
		resp = http.Header{}
	}
	return &Response{Request: req, Status: 200, Header: resp, Body: []byte(body), RequestTime: t0, ResponseTime: t0}
}

func TestStoreLookup(t *testing.T) {
	now := t0
	c := newTestCache(t, 1<<20, &now)
	k, pub := Key("scope", "a.example.com", "/x", "q=1")
	if pub != "a.example.com/x?q=1" {
		t.Fatalf("public key %q", pub)
	}
	if e := c.Lookup(k, http.Header{}); e != nil {
		t.Fatal("hit in an empty cache")
	}
	e, why := c.Store(k, pub, response(nil, hdr("Cache-Control", "max-age=60", "Age", "10"), "one"))
	if e == nil {
		t.Fatalf("not stored: %s", why)
	}
	got := c.Lookup(k, http.Header{})
	if got != e || string(got.Body) != "one" {
		t.Fatalf("lookup: %+v", got)
	}
	now = t0.Add(20 * time.Second)
	if age := got.Age(now); age != 30*time.Second {
		t.Errorf("age %s, want 30s", age)
	}
	if other, _ := Key("other-scope", "a.example.com", "/x", "q=1"); c.Lookup(other, http.Header{}) != nil {
		t.Error("another scope sees the entry")
	}

	// A response already stale on arrival is not stored.
	k2, pub2 := Key("scope", "a.example.com", "/old", "")
	if e, why := c.Store(k2, pub2, response(nil, hdr("Cache-Control", "max-age=10", "Age", "30"), "old")); e != nil || why != reasonExpired {
		t.Errorf("stale response stored: %v %q", e, why)
	}
	// Nor a body over MaxEntrySize.
	if e, _ := c.Store(k2, pub2, response(nil, nil, strings.Repeat("x", 1<<18+1))); e != nil {
		t.Error("oversized body stored")
	}
}

func TestVary(t *testing.T) {
	now := t0
	c := newTestCache(t, 1<<20, &now)
	k, pub := Key("s", "h", "/v", "")
	vary := hdr("Cache-Control", "max-age=60", "Vary", "accept-encoding, Accept-Language")
	en := hdr("Accept-Language", "en", "Accept-Encoding", "gzip")
	fr := hdr("Accept-Language", "fr", "Accept-Encoding", "gzip")
	if e, why := c.Store(k, pub, response(en, vary.Clone(), "en")); e == nil {
		t.Fatal(why)
	}
	if e, why := c.Store(k, pub, response(fr, vary.Clone(), "fr")); e == nil {
		t.Fatal(why)
	}
	for _, tc := range []struct {
		req  http.Header
		want string
	}{
		{en, "en"},
		{fr, "fr"},
		{hdr("Accept-Language", "en", "Accept-Encoding", " gzip "), "en"}, // whitespace around values does not count
		{hdr("Accept-Language", "en"), ""},                                // absent differs
		{hdr("Accept-Language", "de", "Accept-Encoding", "gzip"), ""},
	} {
		e := c.Lookup(k, tc.req)
		got := ""
		if e != nil {
			got = string(e.Body)
			if !e.Matches(k, tc.req) {
				t.Errorf("%v: the entry found does not match", tc.req)
			}
		}
		if got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.req, got, tc.want)
		}
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Len %d, want 2 variants", n)
	}
	other, _ := Key("another route", "h", "/v", "")
	c.Store(other, pub, response(nil, nil, "other"))
	c.Invalidate(pub)
	if c.Lookup(other, nil) != nil {
		t.Error("Invalidate left the entry of another scope")
	}
	if c.Lookup(k, en) != nil || c.Lookup(k, fr) != nil || c.Len() != 0 {
		t.Error("Invalidate left variants")
	}
}

func TestPurge(t *testing.T) {
	now := t0
	c := newTestCache(t, 1<<20, &now)
	for _, p := range []string{"/api/a", "/api/b", "/api/b/c", "/web/x"} {
		k, pub := Key("s", "h.example.com", p, "")
		if e, why := c.Store(k, pub, response(nil, nil, p)); e == nil {
			t.Fatal(why)
		}
	}
	k, pub := Key("s", "h.example.com", "/api/v", "")
	c.Store(k, pub, response(hdr("X", "1"), hdr("Vary", "X"), "v1"))
	c.Store(k, pub, response(hdr("X", "2"), hdr("Vary", "X"), "v2"))
	for _, tc := range []struct {
		prefix string
		want   int
		left   int
	}{
		{"h.example.com/api/b", 2, 4},
		{"other.example.com/", 0, 4},
		{"h.example.com/api/", 3, 1},
		{"", 1, 0},
	} {
		if got := c.Purge(tc.prefix); got != tc.want || c.Len() != tc.left {
			t.Errorf("purge %q: %d gone, %d left; want %d, %d", tc.prefix, got, c.Len(), tc.want, tc.left)
		}
	}
}

// TestSizeBound: the cache holds no more than MaxSize bytes of entries.
func TestSizeBound(t *testing.T) {
	now := t0
	const size = 64 << 10
	c := newTestCache(t, size, &now)
	body := strings.Repeat("x", 1<<10)
	for i := 0; i < 500; i++ {
		k, pub := Key("s", "h", "/"+strconv.Itoa(i), "")
		c.Store(k, pub, response(nil, nil, body))
	}
	var held int64
	c.mu.Lock()
	for _, m := range c.index {
		for _, e := range m {
			held += e.cost()
		}
	}
	c.mu.Unlock()
	if held > size || c.Len() == 0 {
		t.Errorf("%d entries hold %d bytes; the cache has %d", c.Len(), held, size)
	}
}

func TestFlight(t *testing.T) {
	now := t0
	c := newTestCache(t, 1<<20, &now)
	f, leader := c.Join("k")
	if !leader {
		t.Fatal("first is not the leader")
	}
	var wg sync.WaitGroup
	got := make([]*Entry, 5)
	for i := range got {
		g, leader := c.Join("k")
		if leader {
			t.Fatal("second leader")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = g.Wait(context.Background())
		}()
	}
	if n := c.Waiting("k"); n != 5 {
		t.Errorf("waiting %d", n)
	}
	e := &Entry{Body: []byte("x")}
	c.Finish("k", f, e)
	wg.Wait()
	for i, g := range got {
		if g != e {
			t.Errorf("follower %d got %v", i, g)
		}
	}
	if _, leader := c.Join("k"); !leader {
		t.Error("a finished flight is still joined")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g, _ := c.Join("k")
	if _, ok := g.Wait(ctx); ok {
		t.Error("Wait returned ok on a done context")
	}
}

func BenchmarkLookup(b *testing.B) {
	now := t0
	c := newTestCache(b, 1<<20, &now)
	k, pub := Key("s", "h", "/x", "")
	c.Store(k, pub, response(nil, hdr("Cache-Control", "max-age=600"), "body"))
	req := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		if c.Lookup(k, req) == nil {
			b.Fatal("miss")
		}
	}
}

// TestHammer: stores, lookups, invalidations and purges from several
// goroutines (run with -race); afterwards the index that Purge works from
// agrees with what ristretto holds.
func TestHammer(t *testing.T) {
	now := t0
	c := newTestCache(t, 1<<22, &now)
	const keys, workers, ops = 16, 4, 400
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				n := (i*7 + w*3) % keys
				k, pub := Key("s", "h", "/"+strconv.Itoa(n), "")
				req := hdr("X", strconv.Itoa(i%3))
				switch i % 5 {
				case 0, 1:
					resp := hdr("Cache-Control", "max-age=60")
					if n%2 == 0 {
						resp.Set("Vary", "X")
					}
					c.Store(k, pub, response(req, resp, "body"))
				case 2:
					c.Lookup(k, req)
				case 3:
					c.Invalidate(pub)
				case 4:
					if i%40 == 4 {
						c.Purge("h/1")
					}
				}
			}
		}()
	}
	wg.Wait()
	c.rc.Wait()
	indexed := map[string]*Entry{}
	c.mu.Lock()
	for _, m := range c.index {
		for k, e := range m {
			indexed[k] = e
		}
	}
	c.mu.Unlock()
	for k, e := range indexed {
		if got, ok := c.rc.Get(k); !ok || got != e {
			t.Errorf("index has %q, ristretto has %v", k, got)
		}
	}
	for n := 0; n < keys; n++ {
		k, _ := Key("s", "h", "/"+strconv.Itoa(n), "")
		for x := 0; x < 3; x++ {
			if e := c.Lookup(k, hdr("X", strconv.Itoa(x))); e != nil && indexed[e.key] != e {
				t.Errorf("ristretto holds %q, which Purge would not find", e.key)
			}
		}
	}
	before := c.Len()
	if n := c.Purge(""); n != before || c.Len() != 0 {
		t.Errorf("purging all: %d of %d went, %d left", n, before, c.Len())
	}
}
