package main

import (
	"encoding/binary"
	"unsafe"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// entry is a validated token: valid from nbf until exp (skew included),
// and the values of its forwarded claims.
type entry struct {
	exp, nbf int64 // unix seconds; exp -1: none
	until    int64 // cached until
	claims   []string
	has      []bool
	// values are claims as bytes, for the properties (made once, by put).
	values [][]byte
	tok    string // the token's id (the cache checks it: keys are hashes)
}

// tokenCache holds validated tokens until they expire, so a repeated
// token skips signature verification. A token's id in it is the token's
// SHA-256 digest, computed by the host (firstparty.JWTTokenDigest), or the
// token itself where the host has no such function (policy.cacheID). Bounded: when full, expired
// entries go, then arbitrary ones, down to 7/8 of the bound.
//
// It is keyed by a hash of the token read eight bytes at a time, and an
// entry is used only if its token equals the one looked up (compared
// eight bytes at a time too): a Go map keyed by the token itself hashes
// and compares it a byte at a time, and under TinyGo every loop
// iteration costs (a token is often 600 bytes and more). Two tokens
// with the same hash share a place: the newer one takes it.
type tokenCache struct {
	size int
	m    map[uint64]*entry
}

// maxCacheSeconds bounds how long a token without exp is cached.
const maxCacheSeconds = 300

func newTokenCache(size int) *tokenCache {
	return &tokenCache{size: size, m: make(map[uint64]*entry, size)}
}

func (c *tokenCache) get(tok string, now int64) *entry {
	k := tokenHash(tok)
	e := c.m[k]
	if e == nil || !sameToken(e.tok, tok) {
		return nil
	}
	if now >= e.until || now < e.nbf {
		delete(c.m, k)
		return nil
	}
	return e
}

func (c *tokenCache) put(tok string, e *entry, now int64) {
	e.until = now + maxCacheSeconds
	if e.exp >= 0 && e.exp < e.until {
		e.until = e.exp
	}
	e.tok = tok
	if e.values == nil {
		e.values = make([][]byte, len(e.claims))
		for i, v := range e.claims {
			e.values[i] = []byte(v)
		}
	}
	if len(c.m) >= c.size {
		for k, old := range c.m {
			if now >= old.until {
				delete(c.m, k)
			}
		}
		// Down to 7/8 of the bound, so that sweeps are rare.
		for k := range c.m {
			if len(c.m) < c.size-c.size/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[tokenHash(tok)] = e
}

func (c *tokenCache) clear() {
	for k := range c.m {
		delete(c.m, k)
	}
}

// bytesOf is s's bytes, not copied (never written).
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// tokenHash hashes s eight bytes at a time (a multiply-xorshift mix per
// word; not for adversaries: sameToken decides).
func tokenHash(s string) uint64 {
	b := bytesOf(s)
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	for len(b) >= 8 {
		h ^= binary.LittleEndian.Uint64(b)
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
		b = b[8:]
	}
	for _, c := range b {
		h = (h ^ uint64(c)) * 0x94d049bb133111eb
	}
	return h ^ h>>29
}

// sameToken reports whether a == b, comparing eight bytes at a time.
func sameToken(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := bytesOf(a), bytesOf(b)
	for len(x) >= 8 {
		if binary.LittleEndian.Uint64(x) != binary.LittleEndian.Uint64(y) {
			return false
		}
		x, y = x[8:], y[8:]
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// digest calls the host's token digest function with arg: the token's
// digest, or "" when the header has no token. ok is false
// when the host cannot (it has no such function): the plugin then keys its
// cache by the tokens themselves from now on.
func (p *policy) digest(arg []byte) (string, bool) {
	res, err := sdk.CallHost(firstparty.JWTTokenDigest, arg)
	switch {
	case err == nil && len(res) == 33 && res[0] == 1:
		return string(res[1:]), true
	case err == nil && len(res) == 1 && res[0] == 0:
		return "", true // no token in the header
	}
	if p.digestArg != nil {
		sdk.Debugf("jwt: no token digests from the host (%v): tokens are cached by their text", err)
		p.digestArg = nil
		p.tokens.clear() // its ids were digests
	}
	return "", false
}

// cacheID is tok's id in the token cache: its digest when the host gives
// digests, else tok. Ids of the two kinds never meet in one cache: when
// the host fails to give a digest the cache is emptied and digests are no
// longer asked for.
func (p *policy) cacheID(tok string) string {
	if p.digestArg == nil {
		return tok
	}
	arg := make([]byte, 0, 1+len(tok))
	arg = append(append(arg, firstparty.JWTDigestBytes), tok...)
	if d, ok := p.digest(arg); ok && d != "" {
		return d
	}
	return tok
}

// setProperty sets jwt_claims.<claim> for the policies after this one.
func setProperty(path []string, value []byte) {
	if len(value) == 0 {
		return
	}
	_ = proxywasm.SetProperty(path, value)
}
