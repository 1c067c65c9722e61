package firstparty

// SecurityHeaders is plugins/securityheaders's configuration: a
// ProxyPolicy's spec.securityHeaders, as is (hsts.maxAge is in seconds).
type SecurityHeaders struct {
	// HSTS is the Strict-Transport-Security header, sent on responses to
	// HTTPS requests only.
	HSTS *HSTS `json:"hsts"`
	// XFrameOptions: DENY or SAMEORIGIN.
	XFrameOptions string `json:"xFrameOptions"`
	// XContentTypeOptions sends X-Content-Type-Options: nosniff.
	XContentTypeOptions bool `json:"xContentTypeOptions"`
	// ReferrerPolicy: one of the Referrer-Policy values.
	ReferrerPolicy string `json:"referrerPolicy"`
	// ContentSecurityPolicy and PermissionsPolicy are sent as given.
	ContentSecurityPolicy string `json:"contentSecurityPolicy"`
	PermissionsPolicy     string `json:"permissionsPolicy"`
	// CrossOriginOpenerPolicy: same-origin, same-origin-allow-popups,
	// noopener-allow-popups or unsafe-none.
	CrossOriginOpenerPolicy string `json:"crossOriginOpenerPolicy"`
	// CrossOriginEmbedderPolicy: require-corp, credentialless or
	// unsafe-none.
	CrossOriginEmbedderPolicy string `json:"crossOriginEmbedderPolicy"`
	// CrossOriginResourcePolicy: same-site, same-origin or cross-origin.
	CrossOriginResourcePolicy string `json:"crossOriginResourcePolicy"`
	// RemoveHeaders are removed from every response (Server,
	// X-Powered-By, …).
	RemoveHeaders []string `json:"removeHeaders"`
	// Override replaces the backend's own value of a configured header;
	// by default the backend's wins.
	Override bool `json:"override"`
}

// HSTS configures Strict-Transport-Security.
type HSTS struct {
	Enabled           bool  `json:"enabled"`
	MaxAge            int64 `json:"maxAge"` // seconds
	IncludeSubDomains bool  `json:"includeSubDomains"`
	Preload           bool  `json:"preload"`
}
