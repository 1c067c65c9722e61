package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseCacheControl: any input parses without panicking into values
// in range, and what String makes of the result parses back to it.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60", "no-store, no-cache", `private="a,b", s-maxage=5`, "max-stale",
		`max-age="1"`, "max-age=99999999999999999999", ",,=,", `no-cache="`, "min-fresh=1, stale-while-revalidate=2", "stale-if-error=3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseCacheControl(strings.Split(s, "\n"))
		for _, n := range []int64{d.MaxAge, d.SMaxAge, d.MaxStale, d.MinFresh, d.StaleWhileRevalidate, d.StaleIfError} {
			if n < -1 || n > maxDelta {
				t.Fatalf("%q: delta %d out of range", s, n)
			}
		}
		again := ParseCacheControl([]string{d.String()})
		if again != d {
			t.Fatalf("%q: %+v formats as %q, which parses as %+v", s, d, d.String(), again)
		}
		// The rules built on the parser hold whatever it is given.
		h := http.Header{"Cache-Control": {s}}
		if l := (Policy{DefaultTTL: time.Minute, MaxTTL: time.Hour}).Lifetime(h, t0); l < 0 || l > time.Hour {
			t.Fatalf("%q: lifetime %s", s, l)
		}
	})
}

// FuzzParseETags: every member is "*" or an entity tag, and a member
// matches itself.
func FuzzParseETags(f *testing.F) {
	for _, s := range []string{`"a", W/"b"`, "*", `W/`, `"`, `"a" "b"`, `W/"x",*,"y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tag := range ParseETags([]string{s}) {
			if tag == "*" {
				continue
			}
			if _, ok := opaque(tag); !ok {
				t.Fatalf("%q: member %q is not an entity tag", s, tag)
			}
			if !MatchNoneMatch([]string{tag}, tag) {
				t.Fatalf("%q: %q does not match itself", s, tag)
			}
		}
	})
}
