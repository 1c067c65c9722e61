package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// Algorithm codes of the host function's encoding (sdk/firstparty).
const (
	algRS256 = firstparty.JWTRS256
	algRS384 = firstparty.JWTRS384
	algRS512 = firstparty.JWTRS512
	algPS256 = firstparty.JWTPS256
	algPS384 = firstparty.JWTPS384
	algPS512 = firstparty.JWTPS512
	algES256 = firstparty.JWTES256
	algES384 = firstparty.JWTES384
	algEdDSA = firstparty.JWTEdDSA
	algHS256 = firstparty.JWTHS256
	algMax   = algHS256 + 1
)

// Key type codes of the host function's encoding.
const (
	ktyRSA  = firstparty.JWTKeyRSA
	ktyP256 = firstparty.JWTKeyP256
	ktyP384 = firstparty.JWTKeyP384
	ktyEd   = firstparty.JWTKeyEd25519
	ktyOct  = firstparty.JWTKeyOct
)

func algCode(alg string) byte {
	for i, a := range algorithms {
		if a == alg {
			return byte(i + 1)
		}
	}
	return 0
}

// keyFits reports whether alg may be used with a key of type kty.
func keyFits(alg, kty byte) bool {
	switch alg {
	case algRS256, algRS384, algRS512, algPS256, algPS384, algPS512:
		return kty == ktyRSA
	case algES256:
		return kty == ktyP256
	case algES384:
		return kty == ktyP384
	case algEdDSA:
		return kty == ktyEd
	case algHS256:
		return kty == ktyOct
	}
	return false
}

// key is one verification key: a and b are its raw components (RSA n, e;
// EC x, y; Ed25519 x; oct k).
type key struct {
	kid  string
	kty  byte
	alg  byte // the JWK's alg, if it names one
	a, b []byte
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JSON Web Key Set's public signing keys; keys of other
// types or uses, and symmetric keys (a JWKS never carries the HMAC
// secret), are skipped.
func parseJWKS(data []byte) ([]*key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("not a JSON Web Key Set")
	}
	var out []*key
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k := &key{kid: j.Kid, alg: algCode(j.Alg)}
		var err1, err2 error
		switch {
		case j.Kty == "RSA":
			k.kty = ktyRSA
			k.a, err1 = b64(j.N)
			k.b, err2 = b64(j.E)
		case j.Kty == "EC" && (j.Crv == "P-256" || j.Crv == "P-384"):
			k.kty = ktyP256
			if j.Crv == "P-384" {
				k.kty = ktyP384
			}
			k.a, err1 = b64(j.X)
			k.b, err2 = b64(j.Y)
		case j.Kty == "OKP" && j.Crv == "Ed25519":
			k.kty = ktyEd
			k.a, err1 = b64(j.X)
		default:
			continue
		}
		if err1 != nil || err2 != nil || len(k.a) == 0 || (k.kty != ktyEd && len(k.b) == 0) {
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Verify results of the host function.
const (
	verifyBad     = firstparty.JWTVerifyBad // the signature does not verify
	verifyOK      = firstparty.JWTVerifyOK
	verifyRefused = firstparty.JWTVerifyRefused // malformed argument, or alg and key do not fit
)

// verifyFunc is the host function's name.
const verifyFunc = firstparty.JWTVerify

// encodeVerify is the host function's argument (firstparty.JWTVerifyArgs).
func encodeVerify(alg byte, k *key, input string, sig []byte) []byte {
	b := make([]byte, 0, 3+4*binary.MaxVarintLen32+len(k.a)+len(k.b)+len(input)+len(sig))
	return firstparty.AppendJWTVerify(b, &firstparty.JWTVerifyArgs{Alg: alg, Kty: k.kty, A: k.a, B: k.b, Input: []byte(input), Sig: sig})
}

// verify asks the host to check one signature with one key.
func verify(alg byte, k *key, input string, sig []byte) (bool, error) {
	res, err := sdk.CallHost(verifyFunc, encodeVerify(alg, k, input, sig))
	if err != nil {
		return false, errors.New("signature verification unavailable")
	}
	if len(res) != 1 {
		return false, errors.New("signature verification unavailable")
	}
	switch res[0] {
	case verifyOK:
		return true, nil
	case verifyBad:
		return false, nil
	}
	return false, errors.New("key and algorithm refused by the verifier")
}

// keySet is the cached remote JWKS and the state of its fetch (one per
// VM: each VM fetches its own).
type keySet struct {
	keys      []*key
	loaded    bool  // a fetch succeeded once
	expires   int64 // unix seconds: refresh after
	lastFetch int64 // unix seconds of the last fetch started
	gen       int   // bumped when the keys change

	// At most one fetch is under way. Its callout belongs to the HTTP
	// context owner (the request that started it), or to the root
	// context when owner is 0 (see tick). The proxy-wasm SDK drops the
	// answer of a callout whose context is gone, so a fetch whose owner
	// ends first is forgotten (filter.OnDone) and, if requests wait,
	// made again from the root context.
	fetching bool
	owner    uint32
	seq      int   // numbers the fetches: a replaced one's answer is ignored
	started  int64 // unix seconds the fetch started
	// waiters are the requests paused until the fetch answers, in
	// arrival order; at most maxWaiters.
	waiters []*filter
}

// maxWaiters bounds the requests of a VM that wait for the JWKS (a
// variable for tests). Beyond it a request is answered 503 at once: at
// cold start under a flood, memory stays bounded (each waiter holds its
// token) and clients retry after Retry-After.
var maxWaiters = 4096

// find returns the keys that may verify a token with this kid and alg.
func (p *policy) find(kid string, alg byte) []*key {
	if alg == algHS256 {
		if p.hmac != nil {
			return []*key{p.hmac}
		}
		return nil
	}
	var out []*key
	for _, list := range [][]*key{p.inline, p.jwks.keys} {
		for _, k := range list {
			if kid != "" && k.kid != kid {
				continue
			}
			if k.alg != 0 && k.alg != alg {
				continue
			}
			if keyFits(alg, k.kty) {
				out = append(out, k)
			}
		}
	}
	return out
}

// maxAge is the Cache-Control max-age of a response, or -1.
func maxAge(cc string) int64 {
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err == nil && n >= 0 {
				return n
			}
		}
		if d == "no-cache" || d == "no-store" {
			return 0
		}
	}
	return -1
}

// Bounds of a JWKS's cache lifetime taken from Cache-Control.
const (
	minJWKSTTL = 60
	maxJWKSTTL = 24 * 3600
)

// stored takes a fetched JWKS. It returns an error when the answer is not
// a usable key set (the old keys stay).
func (p *policy) stored(now int64, resp *sdk.CallResponse) error {
	if resp.Status != 200 {
		return errors.New("JWKS fetch answered " + strconv.Itoa(resp.Status))
	}
	keys, err := parseJWKS(resp.Body)
	if err != nil {
		return err
	}
	ttl := p.cacheTTL
	if ma := maxAge(resp.Header("cache-control")); ma >= 0 {
		ttl = min(max(ma, minJWKSTTL), maxJWKSTTL)
	}
	s := p.jwks
	if !sameKeys(s.keys, keys) {
		s.gen++
		if p.tokens != nil {
			p.tokens.clear() // tokens of removed keys must not stay valid
		}
	}
	s.keys, s.loaded, s.expires = keys, true, now+ttl
	return nil
}

func sameKeys(a, b []*key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kid != b[i].kid || a[i].kty != b[i].kty || a[i].alg != b[i].alg ||
			string(a[i].a) != string(b[i].a) || string(a[i].b) != string(b[i].b) {
			return false
		}
	}
	return true
}

// fetch starts a JWKS fetch, unless one is under way, with its callout
// in the context owner (a request's context id, or 0 in a root context's
// callback). Its answer is stored, then every waiter is resumed (or
// refused) in its own context. A fetch whose answer is overdue (5s past
// its timeout: it was lost) is replaced.
func (p *policy) fetch(now int64, owner uint32) error {
	s := p.jwks
	if s.fetching && now-s.started <= int64(p.timeout/1000)+5 {
		return nil
	}
	h := [][2]string{{":method", "GET"}, {":path", p.path}, {"accept", "application/json"}}
	if p.authority != "" {
		h = append(h, [2]string{":authority", p.authority})
	}
	seq := s.seq + 1
	err := sdk.HTTPCall(p.upstream, h, nil, p.timeout, func(resp *sdk.CallResponse, err error) {
		if !s.fetching || s.seq != seq {
			return // replaced by a newer fetch, which answers the waiters
		}
		s.fetching = false
		if err == nil {
			err = p.stored(nowUnix(), resp)
		}
		if err != nil {
			sdk.Warnf("jwt: JWKS %s: %v", p.cfg.JWKSURI, err)
		}
		p.wake()
	})
	if err != nil {
		return errors.New("JWKS fetch: " + err.Error())
	}
	s.fetching, s.owner, s.seq, s.started, s.lastFetch = true, owner, seq, now, now
	return nil
}

// wake resumes (or refuses) every waiter, each in its own context, after
// a fetch ended.
func (p *policy) wake() {
	s := p.jwks
	list := s.waiters
	s.waiters = nil
	for _, f := range list {
		if err := proxywasm.SetEffectiveContext(f.r.ContextID()); err != nil {
			continue // its request is gone
		}
		f.keysArrived()
	}
}

// lost forgets the fetch under way, whose answer will not come (its
// owner's context ended), and fetches again from the root context when
// requests wait (tick).
func (p *policy) lost() {
	s := p.jwks
	s.fetching = false
	if len(s.waiters) == 0 {
		return
	}
	for _, q := range orphans {
		if q == p {
			return
		}
	}
	orphans = append(orphans, p)
	// The tick of this policy's root context: its callback may make a
	// callout that no request's end can take away.
	if err := proxywasm.SetTickPeriodMilliSeconds(1); err != nil {
		sdk.Warnf("jwt: JWKS refetch: %v", err)
	}
}

// orphans are the policies of this VM whose waiters need a fetch from a
// root context.
var orphans []*policy

// tick runs in a root context's tick (only requested by lost): it starts
// the fetches the orphans need, and stops the ticks.
func tick() {
	_ = proxywasm.SetTickPeriodMilliSeconds(0)
	list := orphans
	orphans = nil
	for _, p := range list {
		if len(p.jwks.waiters) == 0 {
			continue
		}
		if err := p.fetch(nowUnix(), 0); err != nil {
			sdk.Warnf("jwt: %v", err)
			p.wake() // answered 503
		}
	}
}
