package cache

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Freshness rules (RFC 9111, as a shared cache)
//
// Stored: responses to GET whose status is cacheable by default (200, 203,
// 204, 300, 301, 308, 404, 405, 410, 414, 501 — RFC 9110 §15.1; 206 is
// left out, this cache does not combine ranges), unless
//
//   - the request or the response says no-store;
//   - the response says private, or no-cache (qualified or not) without a
//     validator (ETag or Last-Modified): such a response must be
//     revalidated before each reuse, which takes a validator;
//   - the response sets a cookie (Set-Cookie), or varies on every request
//     (Vary: *), or announces trailers;
//   - the request carried Authorization (or passed an authentication
//     policy, JWT or KeyAuth, which may have removed its credentials) and
//     the response does not say public, s-maxage or must-revalidate
//     (RFC 9111 §3.5);
//   - its freshness lifetime, less its age, is not positive.
//
// Freshness lifetime: s-maxage, else max-age, else Expires minus Date
// (an Expires that does not parse is in the past), else the configured
// defaultTTL (the heuristic RFC 9111 §4.2.2 allows for these statuses
// when the response has no explicit expiration). maxTTL caps it.
//
// Age (RFC 9111 §4.2.3): the larger of the apparent age (response time
// less Date) and the upstream's Age plus the time the upstream took,
// plus the time the entry has been in the cache.
//
// Reuse: while fresh; a request's max-age caps the age it accepts, its
// min-fresh asks for that much freshness left, and its no-cache (or
// max-age=0, or Pragma: no-cache without Cache-Control) sends it upstream
// (revalidating it, see below). Stale, only within the response's
// stale-while-revalidate window (not with must-revalidate,
// proxy-revalidate or s-maxage), to a request without max-age, min-fresh
// or no-cache, while one background request refreshes the entry
// (StaleWindow, StaleFits); within its stale-if-error window, to such a
// request, when the upstream answers 500, 502, 503 or 504 or not at all
// (ErrorWindow, StaleFits with it).
//
// Revalidation (RFC 9111 §4.3): a response that says no-cache has no
// freshness (it is never served without revalidation), nor a stale
// window. An entry with a validator is kept Policy.Keep past its
// freshness and stale window; when it may not be served as it is (stale,
// no-cache, or the request's no-cache, max-age or min-fresh), the request
// goes upstream with the entry's validator (If-None-Match from its ETag,
// else If-Modified-Since from its Last-Modified) unless the client sent
// conditional fields of its own. A 304 updates the entry (Revalidated,
// MergeNotModified); any other response replaces it as a miss would.

// cacheableStatus are the statuses stored without explicit freshness too
// (heuristically cacheable, RFC 9110 §15.1), less 206.
var cacheableStatus = [...]int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}

// Policy holds the configured lifetimes.
type Policy struct {
	DefaultTTL time.Duration // freshness of a response without explicit freshness
	MaxTTL     time.Duration // cap on any freshness (0: none)
	// Keep is how long an entry with a validator (ETag or Last-Modified)
	// is kept past its freshness and stale window, to be revalidated with
	// a conditional request rather than fetched again (0: not kept).
	Keep time.Duration
}

// Why a response is not stored; "" when it is.
const (
	reasonStatus        = "status not cacheable"
	reasonNoStore       = "no-store"
	reasonPrivate       = "private"
	reasonNoCache       = "no-cache without a validator"
	reasonSetCookie     = "Set-Cookie"
	reasonVaryStar      = "Vary: *"
	reasonAuthorization = "request has Authorization"
	reasonTrailers      = "trailers"
	reasonExpired       = "not fresh"
)

// Storable tells whether a response may be stored, from the request's and
// the response's header and the response's status; "" means yes,
// anything else says why not. Freshness is checked by Lifetime.
// authenticated says the request carried credentials its header may no
// longer show (an authentication policy checked them, and may have
// removed them): it counts as Authorization.
func Storable(req http.Header, status int, resp http.Header, authenticated bool) string {
	if !slices.Contains(cacheableStatus[:], status) {
		return reasonStatus
	}
	rq := ParseCacheControl(req["Cache-Control"])
	if rq.NoStore {
		return reasonNoStore
	}
	cc := ParseCacheControl(resp["Cache-Control"])
	switch {
	case cc.NoStore:
		return reasonNoStore
	case cc.Private:
		return reasonPrivate
	case cc.NoCache && !hasValidator(resp):
		return reasonNoCache
	case len(resp["Set-Cookie"]) > 0:
		return reasonSetCookie
	case len(resp["Trailer"]) > 0:
		return reasonTrailers
	}
	for _, f := range VaryFields(resp) {
		if f == "*" {
			return reasonVaryStar
		}
	}
	if (authenticated || len(req["Authorization"]) > 0) && !cc.Public && cc.SMaxAge < 0 && !cc.MustRevalidate {
		return reasonAuthorization
	}
	return ""
}

// Lifetime is the freshness lifetime of a response received at
// responseTime, capped by p.MaxTTL.
func (p Policy) Lifetime(resp http.Header, responseTime time.Time) time.Duration {
	cc := ParseCacheControl(resp["Cache-Control"])
	var d time.Duration
	switch {
	case cc.SMaxAge >= 0:
		d = time.Duration(cc.SMaxAge) * time.Second
	case cc.MaxAge >= 0:
		d = time.Duration(cc.MaxAge) * time.Second
	case len(resp["Expires"]) > 0:
		exp, err := http.ParseTime(resp["Expires"][0])
		if err != nil {
			return 0 // invalid: in the past
		}
		d = exp.Sub(dateOf(resp, responseTime))
	default:
		d = p.DefaultTTL
	}
	if p.MaxTTL > 0 && d > p.MaxTTL {
		d = p.MaxTTL
	}
	return max(d, 0)
}

// dateOf is the response's Date, or the time it was received.
func dateOf(resp http.Header, responseTime time.Time) time.Time {
	if v := resp["Date"]; len(v) > 0 {
		if t, err := http.ParseTime(v[0]); err == nil {
			return t
		}
	}
	return responseTime
}

// InitialAge is the corrected initial age of a response (RFC 9111
// §4.2.3): the age it had when it reached the cache.
func InitialAge(resp http.Header, requestTime, responseTime time.Time) time.Duration {
	apparent := max(responseTime.Sub(dateOf(resp, responseTime)), 0)
	var ageValue time.Duration
	if v := resp["Age"]; len(v) > 0 {
		if n, ok := parseDelta(strings.TrimSpace(v[0])); ok {
			ageValue = time.Duration(n) * time.Second
		}
	}
	corrected := ageValue + max(responseTime.Sub(requestTime), 0)
	return max(apparent, corrected)
}

// Fits tells whether an entry of the given age and lifetime may answer a
// request with these Cache-Control directives. Pragma: no-cache counts
// as no-cache when the request has no Cache-Control.
func Fits(req http.Header, age, lifetime time.Duration) bool {
	if age >= lifetime {
		return false // stale: never served
	}
	cc := ParseCacheControl(req["Cache-Control"])
	if cc.NoCache || (len(req["Cache-Control"]) == 0 && pragmaNoCache(req)) {
		return false
	}
	if cc.MaxAge >= 0 && age > time.Duration(cc.MaxAge)*time.Second {
		return false
	}
	if cc.MaxAge == 0 {
		return false // max-age=0: the client wants a response from the origin
	}
	if cc.MinFresh >= 0 && lifetime-age < time.Duration(cc.MinFresh)*time.Second {
		return false
	}
	return true
}

// StaleWindow is how long past its freshness a response may be served
// while the cache refreshes it in the background (stale-while-revalidate,
// RFC 5861), capped by p.MaxTTL; 0 when it must not be served stale
// (must-revalidate, proxy-revalidate and s-maxage forbid it, RFC 9111
// §4.2.4).
func (p Policy) StaleWindow(resp http.Header) time.Duration {
	cc := ParseCacheControl(resp["Cache-Control"])
	return p.staleFor(cc, cc.StaleWhileRevalidate)
}

// ErrorWindow is how long past its freshness a response may be served
// when the upstream fails to give a new one (stale-if-error, RFC 5861
// §4: a 500, 502, 503 or 504, or no response), capped by p.MaxTTL; 0
// when it must not be served stale (as for StaleWindow, and no-cache).
func (p Policy) ErrorWindow(resp http.Header) time.Duration {
	cc := ParseCacheControl(resp["Cache-Control"])
	return p.staleFor(cc, cc.StaleIfError)
}

// staleFor is a response's window of seconds to be served stale, capped
// by p.MaxTTL; 0 when its Cache-Control forbids serving it stale.
func (p Policy) staleFor(cc Directives, seconds int64) time.Duration {
	if seconds <= 0 || cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge >= 0 || cc.NoCache {
		return 0
	}
	d := time.Duration(seconds) * time.Second
	if p.MaxTTL > 0 && d > p.MaxTTL {
		d = p.MaxTTL
	}
	return d
}

// StaleFits tells whether a stale entry of this age may answer a request
// while it is refreshed: within its stale window, and the request asks
// for nothing fresher (no no-cache, max-age or min-fresh).
func StaleFits(req http.Header, age, lifetime, window time.Duration) bool {
	if age < lifetime || age >= lifetime+window {
		return false
	}
	cc := ParseCacheControl(req["Cache-Control"])
	if cc.NoCache || cc.MaxAge >= 0 || cc.MinFresh >= 0 || (len(req["Cache-Control"]) == 0 && pragmaNoCache(req)) {
		return false
	}
	return true
}

func pragmaNoCache(h http.Header) bool {
	for _, v := range h["Pragma"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "no-cache") {
				return true
			}
		}
	}
	return false
}

// VaryFields returns the field names of the response's Vary, in
// canonical form, sorted, without duplicates; "*" stands for itself.
func VaryFields(resp http.Header) []string {
	var out []string
	for _, v := range resp["Vary"] {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f != "*" {
				f = http.CanonicalHeaderKey(f)
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}
