// Command jwt is NovaEdge's JWT policy: it validates the bearer token of
// every request (signature, issuer, audience, exp/nbf/iat) against the
// issuer's JSON Web Key Set, fetched by HTTP callout and cached, or given
// inline; it answers 401 when the token is missing or invalid and forwards
// selected claims to the backend as headers. Signatures are verified by
// the host (host function "novaedge.jwt_verify"): RSA and ECDSA in the
// guest would be far too slow. See README.md.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// Config is the plugin's configuration: the wire format the host sends
// (firstparty.JWT: a ProxyPolicy's spec.jwt, with durations in whole
// seconds), with the plugin's own Validate.
type Config firstparty.JWT

// ClaimHeader forwards a claim as a request header.
type ClaimHeader = firstparty.ClaimHeader

// algorithms are the supported JWS algorithms, in the order of their
// codes (algCode).
var algorithms = firstparty.JWTAlgorithms

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.JWKSURI == "" && c.JWKS == "" && c.HMACSecret == "" {
		return errors.New("jwksUri, jwks or hmacSecret: one is required")
	}
	if c.JWKSURI != "" {
		if _, _, err := splitUpstream(c.JWKSURI); err != nil {
			return errors.New("jwksUri: " + err.Error())
		}
	}
	if c.JWKS != "" {
		ks, err := parseJWKS([]byte(c.JWKS))
		if err != nil {
			return errors.New("jwks: " + err.Error())
		}
		if len(ks) == 0 {
			return errors.New("jwks: no usable key")
		}
	}
	for i, a := range c.AllowedAlgorithms {
		if algCode(a) == 0 {
			return errors.New("allowedAlgorithms[" + strconv.Itoa(i) + "]: " + strconv.Quote(a) + " is not supported (want one of " + strings.Join(algorithms, ", ") + ")")
		}
		if a == "HS256" && c.HMACSecret == "" {
			return errors.New("allowedAlgorithms[" + strconv.Itoa(i) + "]: HS256 needs hmacSecret")
		}
	}
	if c.HMACSecret != "" && len(c.HMACSecret) < 32 {
		return errors.New("hmacSecret: at least 32 bytes")
	}
	for i, fc := range c.ForwardClaims {
		if fc.Claim == "" || fc.Header == "" || strings.ContainsAny(fc.Header, " :\t\r\n") {
			return errors.New("forwardClaims[" + strconv.Itoa(i) + "]: claim and header (a header name) are required")
		}
	}
	if c.HeaderName == "" {
		c.HeaderName = "Authorization"
		if c.HeaderPrefix == "" {
			c.HeaderPrefix = "Bearer "
		}
	}
	return nil
}

// policy is a configuration made ready.
type policy struct {
	cfg          *Config
	issuer       string
	audience     []string
	allowed      [algMax]bool
	skew         int64
	forward      []ClaimHeader
	props        [][]string // property paths of forward: jwt_claims.<claim>
	header       string
	prefix       string
	hmac         *key
	upstream     string // callout target
	path         string // callout :path
	authority    string
	cacheTTL     int64 // seconds
	refreshEvery int64
	timeout      uint32
	tokens       *tokenCache
	// digestArg asks the host for the digest of the header's token
	// (firstparty.JWTTokenDigest); nil when the host cannot give it.
	digestArg []byte
	jwks      *keySet
	inline    []*key
}

func start(cfg *Config) (sdk.NewFilter, error) {
	p := &policy{
		cfg:      cfg,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		header:   strings.ToLower(cfg.HeaderName),
		prefix:   cfg.HeaderPrefix,
		skew:     secondsOr(cfg.ClockSkewSeconds, 60),
		forward:  cfg.ForwardClaims,
		cacheTTL: secondsOr(cfg.JWKSCacheSeconds, 300),
		timeout:  uint32(secondsOr(cfg.FetchTimeoutMillis, 5000)),
		jwks:     &keySet{},
	}
	p.refreshEvery = secondsOr(cfg.JWKSRefreshSeconds, 30)
	if len(p.forward) == 0 {
		p.forward = []ClaimHeader{{Claim: "sub", Header: "X-User-ID"}}
	}
	algs := cfg.AllowedAlgorithms
	if len(algs) == 0 {
		algs = algorithms[:9]
		if cfg.HMACSecret != "" {
			algs = algorithms
		}
	}
	for _, fc := range p.forward {
		p.props = append(p.props, []string{"jwt_claims", fc.Claim})
	}
	for _, a := range algs {
		p.allowed[algCode(a)] = true
	}
	if cfg.HMACSecret != "" {
		p.hmac = &key{kty: ktyOct, a: []byte(cfg.HMACSecret)}
	}
	if cfg.JWKS != "" {
		p.inline, _ = parseJWKS([]byte(cfg.JWKS))
	}
	if cfg.JWKSURI != "" {
		p.upstream, p.path, _ = splitUpstream(cfg.JWKSURI)
		if strings.HasPrefix(p.upstream, "http") {
			_, rest, _ := strings.Cut(p.upstream, "://")
			p.authority = rest
		}
	}
	size := cfg.TokenCacheSize
	if size == 0 {
		size = 1024
	}
	if size > 0 {
		p.tokens = newTokenCache(size)
		if p.header != "" {
			p.digestArg, _ = firstparty.AppendJWTDigestHeader(nil, p.header, p.prefix)
		}
	}
	// The JWKS is fetched lazily, by the first request that needs it:
	// starting needs no network.
	return func() sdk.Filter { return &filter{p: p} }, nil
}

// secondsOr is v, or def when v is 0, or 0 when v is negative.
func secondsOr(v, def int) int64 {
	switch {
	case v == 0:
		return int64(def)
	case v < 0:
		return 0
	}
	return int64(v)
}

// splitUpstream splits a JWKS location into the callout's upstream and
// :path: "https://h/p" → "https://h", "/p"; "backend:ns/name/p" → "ns/name", "/p".
func splitUpstream(uri string) (upstream, path string, err error) {
	if rest, ok := strings.CutPrefix(uri, "backend:"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
			return "", "", errors.New("backend:NAMESPACE/NAME/PATH expected")
		}
		return parts[0] + "/" + parts[1], "/" + parts[2], nil
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" {
		return "", "", errors.New("an http(s) URL expected")
	}
	host, path := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if host == "" {
		return "", "", errors.New("the URL has no host")
	}
	return scheme + "://" + host, path, nil
}

// plugin has a Tick but no tick period: a root context ticks only while
// a JWKS fetch must be made from it (policy.lost).
var plugin = sdk.Plugin[Config]{Name: "jwt", Start: start, Tick: tick}

func main() { sdk.Run(plugin) }
