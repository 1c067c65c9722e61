package firstparty

// CORS is plugins/cors's configuration: a ProxyPolicy's spec.cors, with
// maxAge in seconds.
type CORS struct {
	// AllowOrigins: exact origins ("https://app.example.com"), patterns
	// with one leading wildcard label ("https://*.example.com": any
	// subdomain, not the bare domain), or "*".
	AllowOrigins []string `json:"allowOrigins"`
	// AllowMethods a preflight may ask for. Default GET, HEAD, POST.
	AllowMethods []string `json:"allowMethods"`
	// AllowHeaders a preflight may ask for; empty allows (and echoes)
	// whatever the preflight asks for.
	AllowHeaders []string `json:"allowHeaders"`
	// ExposeHeaders lets scripts read these response headers.
	ExposeHeaders []string `json:"exposeHeaders"`
	// MaxAgeSeconds lets browsers cache a preflight's answer (0: not sent).
	MaxAgeSeconds int `json:"maxAgeSeconds"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	AllowCredentials bool `json:"allowCredentials"`
}
