// Package firstparty is the wire format between the NovaEdge host and its
// first-party policy plugins (plugins/<name>): the JSON configuration the
// host hands each plugin, and the names of the host functions they call.
// It is defined once, here, and imported by both sides: the host
// (host/policy, which converts a ProxyPolicy's block into these types)
// and the plugins (whose Config is a defined type over these, carrying
// the plugin's own Validate); and the encodings of the host functions'
// arguments and results, which the plugins encode and decode with the
// same code as the host. It imports only encoding/binary and errors, so
// TinyGo builds it.
//
// The JSON carries no "omitempty": a zero value means "the plugin's
// default", exactly as an absent field does.
package firstparty

// Host function names (proxy_call_foreign_function). Their arguments and
// results: JWTVerifyArgs, RateLimitTakeArgs and RateLimitTakeResult; the
// host documents what it accepts (host/policy/firstparty_jwt.go,
// host/policy/firstparty_ratelimit.go).
const (
	// JWTVerify checks one JWS signature with one key.
	JWTVerify = "novaedge.jwt_verify"
	// RateLimitTake takes tokens from a bucket the host keeps.
	RateLimitTake = "novaedge.ratelimit.take"
)
