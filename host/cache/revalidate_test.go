package cache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestMergeNotModified(t *testing.T) {
	later := t0.Add(time.Hour)
	for _, tc := range []struct {
		name             string
		stored, nm, want http.Header
	}{
		{"304 fields replace the stored ones; others stay",
			hdr("Cache-Control", "max-age=1", "Etag", `"a"`, "Content-Type", "text/plain", "X-Custom", "old", "Date", date(0)),
			hdr("Cache-Control", "max-age=100", "Etag", `"a"`, "X-Custom", "new", "Date", date(time.Hour)),
			hdr("Cache-Control", "max-age=100", "Etag", `"a"`, "Content-Type", "text/plain", "X-Custom", "new", "Date", date(time.Hour))},
		{"every value of a repeated field is replaced",
			hdr("Link", "<a>", "Link", "<b>", "Date", date(0)),
			hdr("Link", "<c>", "Date", date(time.Hour)),
			hdr("Link", "<c>", "Date", date(time.Hour))},
		{"Content-Length, Content-Encoding, Content-Range, Transfer-Encoding stay the body's",
			hdr("Content-Length", "10", "Content-Encoding", "gzip", "Content-Range", "bytes 0-9/10", "Date", date(0)),
			hdr("Content-Length", "0", "Content-Encoding", "br", "Content-Range", "bytes */10", "Transfer-Encoding", "chunked", "Date", date(time.Hour)),
			hdr("Content-Length", "10", "Content-Encoding", "gzip", "Content-Range", "bytes 0-9/10", "Date", date(time.Hour))},
		{"the stored Age goes; the 304's counts",
			hdr("Age", "500", "Date", date(0)),
			hdr("Age", "3", "Date", date(time.Hour)),
			hdr("Age", "3", "Date", date(time.Hour))},
		{"the stored Age goes without one in the 304",
			hdr("Age", "500", "Etag", `"a"`, "Date", date(0)),
			hdr("Etag", `"a"`, "Date", date(time.Hour)),
			hdr("Etag", `"a"`, "Date", date(time.Hour))},
		{"a 304 without Date dates the entry at its response time",
			hdr("Date", date(0), "Expires", date(time.Minute)),
			hdr("Expires", date(2*time.Hour)),
			hdr("Date", date(time.Hour), "Expires", date(2*time.Hour))},
		{"no-cache goes when the 304 says otherwise",
			hdr("Cache-Control", "no-cache", "Last-Modified", date(-time.Hour), "Date", date(0)),
			hdr("Cache-Control", "max-age=60", "Date", date(time.Hour)),
			hdr("Cache-Control", "max-age=60", "Last-Modified", date(-time.Hour), "Date", date(time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := tc.stored.Clone()
			got := MergeNotModified(tc.stored, tc.nm, later)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.stored, stored) {
				t.Errorf("the stored header changed: %v", tc.stored)
			}
		})
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stored       http.Header
		field, value string
	}{
		{"ETag first", hdr("Etag", `W/"a"`, "Last-Modified", date(0)), "If-None-Match", `W/"a"`},
		{"Last-Modified without ETag", hdr("Last-Modified", date(0)), "If-Modified-Since", date(0)},
		{"none", hdr("Cache-Control", "no-cache"), "", ""},
		{"empty ETag", hdr("Etag", ""), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if f, v := Validator(tc.stored); f != tc.field || v != tc.value {
				t.Errorf("got %q %q, want %q %q", f, v, tc.field, tc.value)
			}
		})
	}
	for _, tc := range []struct {
		req  http.Header
		want bool
	}{
		{hdr(), false},
		{hdr("Cache-Control", "no-cache"), false},
		{hdr("If-None-Match", `"a"`), true},
		{hdr("If-Modified-Since", date(0)), true},
		{hdr("If-Match", `"a"`), true},
		{hdr("If-Unmodified-Since", date(0)), true},
	} {
		if got := Conditional(tc.req); got != tc.want {
			t.Errorf("Conditional(%v) = %v", tc.req, got)
		}
	}
	for _, tc := range []struct {
		resp, stored string
		want         bool
	}{
		{`"a"`, `"a"`, true},
		{`"a"`, `"b"`, false},
		{`W/"a"`, `W/"a"`, false}, // weak: not for the client's validators
		{`"a"`, `W/"a"`, false},
		{``, `"a"`, false},
		{`"a`, `"a`, false},
	} {
		resp, stored := hdr(), hdr("Etag", tc.stored)
		if tc.resp != "" {
			resp.Set("Etag", tc.resp)
		}
		if got := SameStrongETag(resp, stored); got != tc.want {
			t.Errorf("SameStrongETag(%q, %q) = %v", tc.resp, tc.stored, got)
		}
	}
}

// TestRevalidated: an entry with a validator outlives its freshness for
// Keep; a 304 makes it fresh again from the 304's fields, with its age
// counted anew; a 304 that forbids storing removes it.
func TestRevalidated(t *testing.T) {
	now := t0
	c, err := New(Config{MaxSize: 1 << 20, Policy: Policy{DefaultTTL: time.Minute, MaxTTL: time.Hour, Keep: time.Hour},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	primary, public := Key("s", "h", "/r", "")

	// Not stored: stale on arrival without a validator; no-cache without one.
	for _, h := range []http.Header{
		hdr("Cache-Control", "max-age=1", "Age", "5"),
		hdr("Cache-Control", "no-cache"),
	} {
		if e, why := c.Store(primary, public, response(nil, h, "x")); e != nil {
			t.Errorf("%v stored", h)
		} else if why == "" {
			t.Errorf("%v: no reason", h)
		}
	}
	// Stored: stale on arrival with a validator, and no-cache with one
	// (never fresh).
	e, why := c.Store(primary, public, response(nil, hdr("Cache-Control", "no-cache", "Etag", `"a"`, "Age", "7", "Date", date(0)), "body"))
	if e == nil {
		t.Fatal(why)
	}
	if e.Lifetime != 0 || e.StaleWindow != 0 || Fits(http.Header{}, e.Age(now), e.Lifetime) {
		t.Fatalf("no-cache entry: lifetime %s, window %s", e.Lifetime, e.StaleWindow)
	}
	now = t0.Add(30 * time.Minute) // past any freshness, within Keep
	if c.Lookup(primary, http.Header{}) != e {
		t.Fatal("entry with a validator not kept past its freshness")
	}
	reqTime := now
	now = now.Add(time.Second)
	r, why := c.Revalidated(primary, public, e, &Response{Request: http.Header{},
		Header: hdr("Cache-Control", "max-age=100", "Etag", `"a"`, "Date", now.Format(http.TimeFormat)), RequestTime: reqTime, ResponseTime: now})
	if why != "" {
		t.Fatal(why)
	}
	if r.Status != 200 || string(r.Body) != "body" || r.Lifetime != 100*time.Second || r.Age(now) != time.Second {
		t.Fatalf("revalidated: %d %q lifetime %s age %s", r.Status, r.Body, r.Lifetime, r.Age(now))
	}
	if got := c.Lookup(primary, http.Header{}); got != r || !Fits(http.Header{}, got.Age(now), got.Lifetime) {
		t.Fatal("the revalidated entry did not replace the stored one, or is not fresh")
	}
	if e.Header.Get("Cache-Control") != "no-cache" || e.Header.Get("Age") != "7" {
		t.Errorf("the old entry changed: %v", e.Header)
	}
	if c.Len() != 1 {
		t.Errorf("%d entries, want 1", c.Len())
	}

	// A 304 that says private: served once, no longer stored.
	p, why := c.Revalidated(primary, public, r, &Response{Request: http.Header{},
		Header: hdr("Cache-Control", "private, max-age=100"), RequestTime: now, ResponseTime: now})
	if why != reasonPrivate || p == nil || string(p.Body) != "body" {
		t.Fatalf("private 304: %v %q", p, why)
	}
	if c.Lookup(primary, http.Header{}) != nil {
		t.Error("the entry stayed after a private 304")
	}
}

func TestErrorWindow(t *testing.T) {
	p := Policy{DefaultTTL: time.Minute, MaxTTL: time.Hour}
	for _, tc := range []struct {
		name string
		resp http.Header
		want time.Duration
	}{
		{"none", hdr("Cache-Control", "max-age=10"), 0},
		{"window", hdr("Cache-Control", "max-age=10, stale-if-error=30"), 30 * time.Second},
		{"capped by maxTTL", hdr("Cache-Control", "stale-if-error=86400"), time.Hour},
		{"must-revalidate forbids", hdr("Cache-Control", "max-age=10, stale-if-error=30, must-revalidate"), 0},
		{"proxy-revalidate forbids", hdr("Cache-Control", "stale-if-error=30, proxy-revalidate"), 0},
		{"s-maxage forbids", hdr("Cache-Control", "s-maxage=10, stale-if-error=30"), 0},
		{"no-cache forbids", hdr("Cache-Control", "no-cache, stale-if-error=30", "Etag", `"a"`), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.ErrorWindow(tc.resp); got != tc.want {
				t.Errorf("window %s, want %s", got, tc.want)
			}
		})
	}
	// An entry is kept for the longer of its windows.
	now := t0
	c := newTestCache(t, 1<<20, &now)
	primary, public := Key("s", "h", "/e", "")
	if e, why := c.Store(primary, public, response(nil, hdr("Cache-Control", "max-age=1, stale-if-error=600", "Age", "5"), "x")); e == nil {
		t.Fatalf("an entry within its error window not stored: %s", why)
	}
}
