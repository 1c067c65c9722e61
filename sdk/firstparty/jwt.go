package firstparty

// JWT is plugins/jwt's configuration: a ProxyPolicy's spec.jwt, with
// durations in whole seconds (the host sends -1 for a duration of 0, as 0
// means "default").
type JWT struct {
	// Issuer, if set, must equal the token's iss.
	Issuer string `json:"issuer"`
	// Audience, if set: the token's aud must name at least one of these.
	Audience []string `json:"audience"`
	// JWKSURI is the issuer's JSON Web Key Set URL, fetched through the
	// host's HTTP callout. Or the name of a ProxyBackend ("ns/name")
	// followed by the path: "backend:ns/name/.well-known/jwks.json".
	JWKSURI string `json:"jwksUri"`
	// JWKS is an inline JSON Web Key Set (JSON text).
	JWKS string `json:"jwks"`
	// HeaderName and HeaderPrefix: where the token is (default
	// "Authorization", "Bearer ").
	HeaderName   string `json:"headerName"`
	HeaderPrefix string `json:"headerPrefix"`
	// Cookie and QueryParameter: other places to look for the token when
	// the header has none.
	Cookie         string `json:"cookie"`
	QueryParameter string `json:"queryParameter"`
	// AllowedAlgorithms: default every asymmetric one (RS*, PS*, ES256,
	// ES384, EdDSA), plus HS256 when HMACSecret is set. "none" is never
	// accepted.
	AllowedAlgorithms []string `json:"allowedAlgorithms"`
	// HMACSecret is the HS256 shared secret, inline in the configuration.
	HMACSecret string `json:"hmacSecret"`
	// ClockSkewSeconds tolerated on exp, nbf and iat (default 60; -1: 0).
	ClockSkewSeconds int `json:"clockSkewSeconds"`
	// ForwardClaims: claim → request header. Default {sub: X-User-ID}.
	// Client-sent copies of these headers are always removed.
	ForwardClaims []ClaimHeader `json:"forwardClaims"`
	// RemoveCredential removes the token (header, cookie is left alone)
	// before the request goes upstream.
	RemoveCredential bool `json:"removeCredential"`
	// JWKSCacheSeconds: how long a fetched JWKS is used when its answer
	// has no Cache-Control max-age (default 300). A max-age is honoured
	// within [60s, 24h].
	JWKSCacheSeconds int `json:"jwksCacheSeconds"`
	// JWKSRefreshSeconds: the least time between two fetches caused by an
	// unknown kid (default 30; -1: 0).
	JWKSRefreshSeconds int `json:"jwksRefreshSeconds"`
	// FetchTimeoutMillis bounds a JWKS fetch (default 5000).
	FetchTimeoutMillis int `json:"fetchTimeoutMillis"`
	// TokenCacheSize bounds the cache of validated tokens (default 1024;
	// -1: no cache).
	TokenCacheSize int `json:"tokenCacheSize"`
}

// ClaimHeader forwards a claim as a request header.
type ClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}
