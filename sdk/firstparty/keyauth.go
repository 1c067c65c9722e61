package firstparty

// KeyAuth is plugins/keyauth's configuration: a ProxyPolicy's spec.keyAuth
// with the keys replaced by their SHA-256 (the host reads keysFile and
// hashes every key; the plugin never sees a key it was not sent).
type KeyAuth struct {
	// Keys are the known keys, by hash.
	Keys []APIKey `json:"keys"`
	// Header carries the key (default X-API-Key).
	Header string `json:"header"`
	// Query, if set, names a query parameter that may carry the key when
	// the header does not.
	Query string `json:"query"`
	// HideCredentials removes the key (header or query parameter) before
	// the request goes upstream.
	HideCredentials bool `json:"hideCredentials"`
	// ConsumerHeader carries the consumer's name upstream (default
	// X-Consumer).
	ConsumerHeader string `json:"consumerHeader"`
}

// APIKey is one known key.
type APIKey struct {
	SHA256   string `json:"sha256"` // hex SHA-256 of the key
	Consumer string `json:"consumer"`
}
