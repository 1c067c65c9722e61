package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// entry is a validated token: valid from nbf until exp (skew included),
// and the values of its forwarded claims.
type entry struct {
	exp, nbf int64 // unix seconds; exp -1: none
	until    int64 // cached until
	claims   []string
	has      []bool
}

// tokenCache holds validated tokens until they expire, so a repeated
// token skips signature verification. Bounded: when full, expired
// entries go, then arbitrary ones, down to 7/8 of the bound.
type tokenCache struct {
	size int
	m    map[string]*entry
}

// maxCacheSeconds bounds how long a token without exp is cached.
const maxCacheSeconds = 300

func newTokenCache(size int) *tokenCache {
	return &tokenCache{size: size, m: make(map[string]*entry, size)}
}

func (c *tokenCache) get(tok string, now int64) *entry {
	e := c.m[tok]
	if e == nil {
		return nil
	}
	if now >= e.until || now < e.nbf {
		delete(c.m, tok)
		return nil
	}
	return e
}

func (c *tokenCache) put(tok string, e *entry, now int64) {
	e.until = now + maxCacheSeconds
	if e.exp >= 0 && e.exp < e.until {
		e.until = e.exp
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
	c.m[tok] = e
}

func (c *tokenCache) clear() {
	for k := range c.m {
		delete(c.m, k)
	}
}

// setProperty sets jwt_claims.<claim> for the policies after this one.
func setProperty(claim, value string) {
	_ = proxywasm.SetProperty([]string{"jwt_claims", claim}, []byte(value))
}
