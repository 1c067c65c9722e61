package cache

import (
	"net/http"
	"testing"
	"time"
)

// t0 is the fake clock's start: responses are received at t0.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func date(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }

func TestParseCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string // Directives.String of the result
	}{
		{"empty", nil, ""},
		{"flags", []string{"no-store, No-Cache,PRIVATE , public"}, "no-store, no-cache, private, public"},
		{"two lines", []string{"max-age=60", "s-maxage=10, must-revalidate"}, "must-revalidate, max-age=60, s-maxage=10"},
		{"qualified no-cache and private", []string{`no-cache="Set-Cookie, X-A", private="X-B"`}, "no-cache, private"},
		{"quoted max-age is not understood", []string{`max-age="60"`}, "max-age=0"},
		{"malformed max-age", []string{"max-age=6O"}, "max-age=0"},
		{"empty max-age", []string{"max-age="}, "max-age=0"},
		{"conflicting max-age", []string{"max-age=60, max-age=30"}, "max-age=0"},
		{"repeated equal max-age", []string{"max-age=60, max-age=60"}, "max-age=60"},
		{"overflow caps", []string{"max-age=99999999999999999999999"}, "max-age=2147483647"},
		{"bare max-stale", []string{"max-stale"}, "max-stale"},
		{"request directives", []string{"max-stale=5, min-fresh=7, only-if-cached"}, "only-if-cached, max-stale=5, min-fresh=7"},
		{"stale-while-revalidate", []string{"max-age=1, stale-while-revalidate=30"}, "max-age=1, stale-while-revalidate=30"},
		{"stale-if-error", []string{"stale-if-error=60, stale-if-error=5"}, "stale-if-error=60"},
		{"unknown extensions ignored", []string{`community="UCI", foo, bar=baz, max-age=5`}, "max-age=5"},
		{"quoted comma does not split", []string{`private="a,max-age=9", max-age=5`}, "private, max-age=5"},
		{"stray commas and spaces", []string{" ,, public ,,"}, "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseCacheControl(tc.lines).String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStorable(t *testing.T) {
	auth := hdr("Authorization", "Bearer x")
	for _, tc := range []struct {
		name   string
		req    http.Header
		status int
		resp   http.Header
		want   string
		authed bool
	}{
		{"plain 200", nil, 200, nil, "", false},
		{"404 by default", nil, 404, nil, "", false},
		{"301 by default", nil, 301, nil, "", false},
		{"206 never", nil, 206, hdr("Cache-Control", "max-age=60"), reasonStatus, false},
		{"302 never", nil, 302, hdr("Cache-Control", "max-age=60"), reasonStatus, false},
		{"500 never", nil, 500, hdr("Cache-Control", "max-age=60"), reasonStatus, false},
		{"request no-store", hdr("Cache-Control", "no-store"), 200, nil, reasonNoStore, false},
		{"response no-store", nil, 200, hdr("Cache-Control", "max-age=60, no-store"), reasonNoStore, false},
		{"private", nil, 200, hdr("Cache-Control", "private, max-age=60"), reasonPrivate, false},
		{"no-cache", nil, 200, hdr("Cache-Control", "no-cache"), reasonNoCache, false},
		{"no-cache with an ETag", nil, 200, hdr("Cache-Control", "no-cache", "Etag", `"x"`), "", false},
		{"no-cache with Last-Modified", nil, 200, hdr("Cache-Control", `no-cache="Set-Cookie2"`, "Last-Modified", date(0)), "", false},
		{"Set-Cookie", nil, 200, hdr("Set-Cookie", "a=b"), reasonSetCookie, false},
		{"Vary: *", nil, 200, hdr("Vary", "Accept, *"), reasonVaryStar, false},
		{"Vary on a field", nil, 200, hdr("Vary", "Accept"), "", false},
		{"trailers", nil, 200, hdr("Trailer", "X-Checksum"), reasonTrailers, false},
		{"Authorization", auth, 200, hdr("Cache-Control", "max-age=60"), reasonAuthorization, false},
		{"Authorization, public", auth, 200, hdr("Cache-Control", "public"), "", false},
		{"Authorization, s-maxage", auth, 200, hdr("Cache-Control", "s-maxage=60"), "", false},
		{"Authorization, must-revalidate", auth, 200, hdr("Cache-Control", "must-revalidate, max-age=60"), "", false},
		{"authenticated by a policy", nil, 200, hdr("Cache-Control", "max-age=60"), reasonAuthorization, true},
		{"authenticated by a policy, public", nil, 200, hdr("Cache-Control", "public, max-age=60"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := tc.req, tc.resp
			if req == nil {
				req = http.Header{}
			}
			if resp == nil {
				resp = http.Header{}
			}
			if got := Storable(req, tc.status, resp, tc.authed); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLifetime(t *testing.T) {
	p := Policy{DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour}
	for _, tc := range []struct {
		name string
		resp http.Header
		want time.Duration
	}{
		{"default TTL", hdr(), 5 * time.Minute},
		{"default TTL with public only", hdr("Cache-Control", "public"), 5 * time.Minute},
		{"max-age", hdr("Cache-Control", "max-age=60"), time.Minute},
		{"s-maxage wins", hdr("Cache-Control", "max-age=60, s-maxage=10"), 10 * time.Second},
		{"max-age wins over Expires", hdr("Cache-Control", "max-age=60", "Expires", date(time.Hour/2), "Date", date(0)), time.Minute},
		{"Expires minus Date", hdr("Expires", date(10*time.Minute), "Date", date(0)), 10 * time.Minute},
		{"Expires minus Date, Date in the past", hdr("Expires", date(10*time.Minute), "Date", date(-5*time.Minute)), 15 * time.Minute},
		{"Expires without Date: the response time", hdr("Expires", date(2*time.Minute)), 2 * time.Minute},
		{"Expires in the past", hdr("Expires", date(-time.Minute), "Date", date(0)), 0},
		{"invalid Expires is in the past", hdr("Expires", "0"), 0},
		{"maxTTL caps max-age", hdr("Cache-Control", "max-age=86400"), time.Hour},
		{"maxTTL caps Expires", hdr("Expires", date(48*time.Hour), "Date", date(0)), time.Hour},
		{"max-age=0", hdr("Cache-Control", "max-age=0"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Lifetime(tc.resp, t0); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestInitialAge(t *testing.T) {
	req := t0.Add(-2 * time.Second) // the upstream took 2s
	for _, tc := range []struct {
		name string
		resp http.Header
		want time.Duration
	}{
		{"no Date, no Age: the upstream's delay", hdr(), 2 * time.Second},
		{"Age plus delay", hdr("Age", "30", "Date", date(0)), 32 * time.Second},
		{"apparent age wins when larger", hdr("Age", "3", "Date", date(-time.Minute)), time.Minute},
		{"a Date in the future counts 0", hdr("Date", date(time.Hour)), 2 * time.Second},
		{"malformed Age is ignored", hdr("Age", "-5", "Date", date(0)), 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := InitialAge(tc.resp, req, t0); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFits(t *testing.T) {
	life := time.Minute
	for _, tc := range []struct {
		name string
		req  http.Header
		age  time.Duration
		want bool
	}{
		{"fresh", hdr(), 10 * time.Second, true},
		{"stale", hdr(), time.Minute, false},
		{"stale even with max-stale (never served stale)", hdr("Cache-Control", "max-stale=600"), 2 * time.Minute, false},
		{"no-cache", hdr("Cache-Control", "no-cache"), 0, false},
		{"Pragma: no-cache", hdr("Pragma", "no-cache"), 0, false},
		{"Pragma ignored beside Cache-Control", hdr("Pragma", "no-cache", "Cache-Control", "max-age=30"), 10 * time.Second, true},
		{"max-age=0", hdr("Cache-Control", "max-age=0"), 0, false},
		{"max-age over the age", hdr("Cache-Control", "max-age=30"), 10 * time.Second, true},
		{"max-age under the age", hdr("Cache-Control", "max-age=5"), 10 * time.Second, false},
		{"min-fresh met", hdr("Cache-Control", "min-fresh=40"), 10 * time.Second, true},
		{"min-fresh not met", hdr("Cache-Control", "min-fresh=55"), 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fits(tc.req, tc.age, life); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	stored := hdr("ETag", `W/"abc"`, "Last-Modified", date(-time.Hour))
	for _, tc := range []struct {
		name string
		req  http.Header
		want bool
	}{
		{"unconditional", hdr(), false},
		{"weak match", hdr("If-None-Match", `"abc"`), true},
		{"in a list", hdr("If-None-Match", `"x", W/"abc"`), true},
		{"star", hdr("If-None-Match", "*"), true},
		{"no match", hdr("If-None-Match", `"abd"`), false},
		{"If-None-Match wins over If-Modified-Since", hdr("If-None-Match", `"x"`, "If-Modified-Since", date(0)), false},
		{"not modified since", hdr("If-Modified-Since", date(0)), true},
		{"modified since", hdr("If-Modified-Since", date(-2*time.Hour)), false},
		{"invalid date ignored", hdr("If-Modified-Since", "yesterday"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NotModified(tc.req, stored); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if NotModified(hdr("If-None-Match", "*"), hdr()) {
		t.Error("If-None-Match: * matched a response without ETag")
	}
}

func TestParseETags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`"a", W/"b" ,"c,d"`, []string{`"a"`, `W/"b"`, `"c,d"`}},
		{`*`, []string{"*"}},
		{`"a", bogus, "b"`, []string{`"a"`}},
		{`"unterminated`, nil},
		{``, nil},
	} {
		got := ParseETags([]string{tc.in})
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	p := Policy{DefaultTTL: time.Minute, MaxTTL: time.Hour}
	for _, tc := range []struct {
		name string
		resp http.Header
		want time.Duration
	}{
		{"none", hdr("Cache-Control", "max-age=10"), 0},
		{"window", hdr("Cache-Control", "max-age=10, stale-while-revalidate=30"), 30 * time.Second},
		{"capped by maxTTL", hdr("Cache-Control", "stale-while-revalidate=86400"), time.Hour},
		{"must-revalidate forbids", hdr("Cache-Control", "max-age=10, stale-while-revalidate=30, must-revalidate"), 0},
		{"proxy-revalidate forbids", hdr("Cache-Control", "stale-while-revalidate=30, proxy-revalidate"), 0},
		{"s-maxage forbids", hdr("Cache-Control", "s-maxage=10, stale-while-revalidate=30"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.StaleWindow(tc.resp); got != tc.want {
				t.Errorf("window %s, want %s", got, tc.want)
			}
		})
	}
	life, window := 10*time.Second, 30*time.Second
	for _, tc := range []struct {
		name string
		req  http.Header
		age  time.Duration
		want bool
	}{
		{"fresh is not stale", hdr(), 5 * time.Second, false},
		{"in the window", hdr(), 20 * time.Second, true},
		{"past the window", hdr(), 40 * time.Second, false},
		{"request max-age", hdr("Cache-Control", "max-age=600"), 20 * time.Second, false},
		{"request min-fresh", hdr("Cache-Control", "min-fresh=1"), 20 * time.Second, false},
		{"request no-cache", hdr("Cache-Control", "no-cache"), 20 * time.Second, false},
		{"request Pragma: no-cache", hdr("Pragma", "no-cache"), 20 * time.Second, false},
		{"request max-stale is fine", hdr("Cache-Control", "max-stale=5"), 20 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StaleFits(tc.req, tc.age, life, window); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
