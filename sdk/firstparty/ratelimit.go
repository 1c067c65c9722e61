package firstparty

// RateLimit is plugins/ratelimit's configuration: a ProxyPolicy's
// spec.rateLimit, as is.
type RateLimit struct {
	// RequestsPerSecond refills each bucket (0.001 to 1e9; counted in
	// thousandths).
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Burst is a bucket's capacity: how many requests may come at once.
	// 0: one second's worth (RequestsPerSecond rounded up, at least 1).
	Burst int `json:"burst"`
	// Key selects the bucket: "header:NAME", "ip" (default), "claim:NAME"
	// (a claim of the token the JWT policy validated), "route", "global".
	Key string `json:"key"`
	// OnMissingKey: what a request without its header or claim gets: "ip"
	// (default: its client address's bucket) or "reject" (401).
	OnMissingKey string `json:"onMissingKey"`
}
