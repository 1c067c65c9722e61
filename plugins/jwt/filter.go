package main

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/novaedge/novaedge/sdk"
)

// nowUnix is the clock (tests replace it).
var nowUnix = func() int64 { return time.Now().Unix() }

// failure is why a request is refused.
type failure struct {
	status int    // 401, or 503 when the keys cannot be had
	desc   string // error_description: no quotes or backslashes
}

var (
	errNeedKeys = &failure{status: 0} // fetch the JWKS and try again
	errNoKeys   = &failure{status: 503, desc: "the issuer's keys could not be fetched"}
)

func invalid(desc string) *failure { return &failure{status: 401, desc: desc} }

type filter struct {
	sdk.BaseFilter
	p     *policy
	r     *sdk.Request // set by OnRequest
	token string
	id    string // the token's key in the cache (policy.cacheID)
	// where the token was, to remove it when configured
	fromHeader bool
	waiting    bool // in p.jwks.waiters
}

func (f *filter) OnRequest(r *sdk.Request) sdk.Action {
	p := f.p
	f.r = r
	// Client-sent copies of the claim headers never reach the backend:
	// removed here from a preflight, replaced or removed by accept
	// otherwise (a refused request goes nowhere).
	// Origin first: most requests have none, and its absence costs no
	// copy into the VM.
	if r.HasHeader("origin") && r.Method() == "OPTIONS" && r.HasHeader("access-control-request-method") {
		for _, fc := range p.forward {
			r.RemoveHeader(fc.Header)
		}
		return sdk.Continue // a CORS preflight carries no credentials
	}
	now := nowUnix()
	// A token seen before is found by the digest of the header's token,
	// which the host computes: the token is not copied into the VM.
	if p.tokens != nil && p.digestArg != nil {
		if d, ok := p.digest(p.digestArg); ok && d != "" {
			if e := p.tokens.get(d, now); e != nil {
				f.fromHeader = true
				f.accept(r, e)
				return sdk.Continue
			}
			f.id = d
		}
	}
	f.token, f.fromHeader = p.extract(r)
	if f.token == "" {
		return r.Deny(401, "missing bearer token", [2]string{"www-authenticate", "Bearer"})
	}
	if p.tokens != nil {
		if f.id == "" {
			f.id = p.cacheID(f.token)
		}
		if e := p.tokens.get(f.id, now); e != nil {
			f.accept(r, e)
			return sdk.Continue
		}
	}
	e, fail := p.validate(f.token, f.id, now, r.ContextID())
	if fail == errNeedKeys {
		return f.wait(r, now)
	}
	if fail != nil {
		return f.deny(r, fail)
	}
	f.accept(r, e)
	return sdk.Continue
}

// wait pauses the request until the JWKS fetch under way, or one it
// starts, answers (policy.wake, which calls keysArrived).
func (f *filter) wait(r *sdk.Request, now int64) sdk.Action {
	s := f.p.jwks
	if len(s.waiters) >= maxWaiters {
		sdk.Warnf("jwt: %d requests wait for the JWKS already", len(s.waiters))
		return f.deny(r, errNoKeys)
	}
	if err := f.p.fetch(now, r.ContextID()); err != nil {
		sdk.Warnf("jwt: %v", err)
		return f.deny(r, errNoKeys)
	}
	s.waiters = append(s.waiters, f)
	f.waiting = true
	return sdk.Pause
}

// keysArrived finishes a waiting request once the fetch ended (its
// context is the effective one).
func (f *filter) keysArrived() {
	f.waiting = false
	e, fail := f.p.validate(f.token, f.id, nowUnix(), 0)
	if fail == errNeedKeys {
		fail = errNoKeys
	}
	if fail != nil {
		f.deny(f.r, fail)
		return
	}
	f.accept(f.r, e)
	f.r.Resume()
}

// OnDone forgets a request that ends while it waits (its client went
// away), and the fetch whose callout its context held.
func (f *filter) OnDone() {
	s := f.p.jwks
	if f.waiting {
		f.waiting = false
		for i, w := range s.waiters {
			if w == f {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
	}
	if s.fetching && f.r != nil && s.owner == f.r.ContextID() {
		f.p.lost()
	}
}

func (f *filter) deny(r *sdk.Request, fail *failure) sdk.Action {
	if fail.status == 503 {
		return r.Deny(503, "JWT: "+fail.desc, [2]string{"retry-after", "5"})
	}
	return r.Deny(401, "invalid token: "+fail.desc,
		[2]string{"www-authenticate", `Bearer error="invalid_token", error_description="` + fail.desc + `"`})
}

// accept forwards the claims of a valid token: each claim's header is set
// (replacing the client's copies), or removed when the token lacks it.
func (f *filter) accept(r *sdk.Request, e *entry) {
	for i, fc := range f.p.forward {
		if !e.has[i] {
			r.RemoveHeader(fc.Header)
			continue
		}
		r.SetHeader(fc.Header, e.claims[i])
		if e.values != nil {
			setProperty(f.p.props[i], e.values[i])
		} else {
			setProperty(f.p.props[i], []byte(e.claims[i]))
		}
	}
	if f.p.cfg.RemoveCredential && f.fromHeader {
		r.RemoveHeader(f.p.header)
	}
}

// extract finds the token: the header (with its prefix), else the cookie,
// else the query parameter.
func (p *policy) extract(r *sdk.Request) (string, bool) {
	if p.header != "" {
		if v := r.Header(p.header); v != "" {
			if p.prefix == "" {
				return strings.TrimSpace(v), true
			}
			if len(v) > len(p.prefix) && strings.EqualFold(v[:len(p.prefix)], p.prefix) {
				return strings.TrimSpace(v[len(p.prefix):]), true
			}
		}
	}
	if p.cfg.Cookie != "" {
		if v := r.Cookie(p.cfg.Cookie); v != "" {
			return v, false
		}
	}
	if p.cfg.QueryParameter != "" {
		if v := r.Query(p.cfg.QueryParameter); v != "" {
			return v, false
		}
	}
	return "", false
}

type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// maxToken bounds the tokens looked at.
const maxToken = 16 << 10

// validate checks a token: errNeedKeys when the JWKS must be fetched
// first. A valid token is cached under id (policy.cacheID). owner is the
// context id of the request, whose context may start a fetch (a
// background refresh of stale keys, or one for an unknown kid); 0 when
// the keys were just fetched: no fetch then.
func (p *policy) validate(tok, id string, now int64, owner uint32) (*entry, *failure) {
	mayFetch := owner != 0
	if len(tok) > maxToken {
		return nil, invalid("token too large")
	}
	h64, rest, ok1 := strings.Cut(tok, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, invalid("malformed token")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(h64)
	cb, err2 := base64.RawURLEncoding.DecodeString(c64)
	sig, err3 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, invalid("malformed token")
	}
	hm, ok := scanObject(hb)
	if !ok {
		return nil, invalid("malformed token header")
	}
	var h header
	h.Alg, _ = str(hm["alg"])
	h.Kid, _ = str(hm["kid"])
	if _, crit := hm["crit"]; crit {
		h.Crit = []string{"?"}
	}
	if strings.EqualFold(h.Alg, "none") || h.Alg == "" {
		return nil, invalid("unsigned tokens are not accepted")
	}
	alg := algCode(h.Alg)
	if alg == 0 || !p.allowed[alg] {
		return nil, invalid("algorithm " + clean(h.Alg) + " not allowed")
	}
	if len(h.Crit) > 0 {
		return nil, invalid("unsupported critical header")
	}
	if len(sig) == 0 {
		return nil, invalid("missing signature")
	}
	claims, ok := scanObject(cb)
	if !ok {
		return nil, invalid("malformed token claims")
	}
	e, fail := p.checkClaims(claims, now)
	if fail != nil {
		return nil, fail
	}
	keys := p.find(h.Kid, alg)
	if alg != algHS256 && p.upstream != "" {
		s := p.jwks
		switch {
		case !s.loaded:
			return nil, errNeedKeys
		case len(keys) == 0 && mayFetch && now-s.lastFetch >= p.refreshEvery:
			return nil, errNeedKeys // an unknown kid: maybe the keys rotated
		case now >= s.expires && !s.fetching && mayFetch:
			// Stale: use the keys we have, refresh in the background.
			_ = p.fetch(now, owner)
		}
	}
	if len(keys) == 0 {
		if h.Kid != "" {
			return nil, invalid("unknown key id " + clean(h.Kid))
		}
		return nil, invalid("no key for algorithm " + h.Alg)
	}
	input := tok[:len(h64)+1+len(c64)]
	for _, k := range keys {
		ok, err := verify(alg, k, input, sig)
		if err != nil {
			return nil, invalid(err.Error())
		}
		if ok {
			if p.tokens != nil && id != "" {
				p.tokens.put(id, e, now)
			}
			return e, nil
		}
	}
	return nil, invalid("signature verification failed")
}

// checkClaims checks iss, aud, exp, nbf and iat and picks the forwarded
// claims.
func (p *policy) checkClaims(c map[string][]byte, now int64) (*entry, *failure) {
	e := &entry{exp: -1, claims: make([]string, len(p.forward)), has: make([]bool, len(p.forward))}
	if p.issuer != "" {
		if iss, ok := str(c["iss"]); !ok || iss != p.issuer {
			return nil, invalid("wrong issuer")
		}
	}
	if len(p.audience) > 0 && !audienceOK(c["aud"], p.audience) {
		return nil, invalid("wrong audience")
	}
	for _, n := range []string{"exp", "nbf", "iat"} {
		raw, ok := c[n]
		if !ok {
			continue
		}
		f, ok := num(raw)
		if !ok {
			return nil, invalid(n + " is not a number")
		}
		t := int64(f)
		switch n {
		case "exp":
			if now >= t+p.skew {
				return nil, invalid("token expired")
			}
			e.exp = t + p.skew
		case "nbf":
			if now < t-p.skew {
				return nil, invalid("token not yet valid")
			}
			e.nbf = t - p.skew
		case "iat":
			if now < t-p.skew {
				return nil, invalid("token issued in the future")
			}
		}
	}
	for i, fc := range p.forward {
		raw, ok := c[fc.Claim]
		if !ok {
			continue
		}
		s, ok := str(raw)
		if !ok {
			s = string(raw) // numbers, booleans, arrays and objects as JSON
		}
		if strings.ContainsAny(s, "\r\n\x00") {
			continue
		}
		e.claims[i], e.has[i] = s, true
	}
	return e, nil
}

func audienceOK(raw []byte, want []string) bool {
	list := [][]byte{raw}
	if len(raw) > 0 && raw[0] == '[' {
		var ok bool
		if list, ok = scanArray(raw); !ok {
			return false
		}
	}
	for _, r := range list {
		a, ok := str(r)
		if !ok {
			continue
		}
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}

// clean makes a token's text safe in a quoted error_description.
func clean(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
