// Command keyauth is NovaEdge's KeyAuth policy: it authenticates requests
// by API key, tells the backend (and the policies after it) which consumer
// the key belongs to, and answers 401 when the key is missing or unknown.
// See README.md.
package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// Config is the plugin's configuration: the wire format the host sends
// (firstparty.KeyAuth: a ProxyPolicy's spec.keyAuth with the keys
// replaced by their SHA-256), with the plugin's own Validate.
type Config firstparty.KeyAuth

// Key is one known key, by hash.
type Key = firstparty.APIKey

// ConsumerProperty is the proxy-wasm property the plugin sets to the
// consumer's name: the policies after it (a RateLimit keyed on the
// consumer) read it.
var ConsumerProperty = []string{"keyauth", "consumer"}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Keys) == 0 {
		return errors.New("keys: at least one key is required")
	}
	seen := map[string]int{}
	for i, k := range c.Keys {
		at := "keys[" + strconv.Itoa(i) + "]"
		if len(k.SHA256) != 64 || !isHex(k.SHA256) {
			return errors.New(at + ".sha256: want 64 hexadecimal digits")
		}
		if j, dup := seen[strings.ToLower(k.SHA256)]; dup {
			return errors.New(at + ": the same key as keys[" + strconv.Itoa(j) + "]")
		}
		seen[strings.ToLower(k.SHA256)] = i
		if k.Consumer == "" || strings.ContainsAny(k.Consumer, "\r\n\x00") {
			return errors.New(at + ".consumer: required, a header value")
		}
	}
	for _, h := range []struct{ field, value string }{{"header", c.Header}, {"consumerHeader", c.ConsumerHeader}} {
		if h.value != "" && !sdk.ValidHeaderName(h.value) {
			return errors.New(h.field + ": " + strconv.Quote(h.value) + " is not a header name")
		}
	}
	if strings.ContainsAny(c.Query, "&=#? \t") {
		return errors.New("query: " + strconv.Quote(c.Query) + " is not a query parameter name")
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// policy is a configuration made ready to match.
type policy struct {
	hashes    [][sha256.Size]byte
	consumers []string
	header    string
	query     string
	hide      bool
	consumer  string // header
}

func start(cfg *Config) (sdk.NewFilter, error) {
	p := &policy{
		header:   strings.ToLower(cfg.Header),
		query:    cfg.Query,
		hide:     cfg.HideCredentials,
		consumer: strings.ToLower(cfg.ConsumerHeader),
	}
	if p.header == "" {
		p.header = "x-api-key"
	}
	if p.consumer == "" {
		p.consumer = "x-consumer"
	}
	for _, k := range cfg.Keys {
		var h [sha256.Size]byte
		if _, err := hex.Decode(h[:], []byte(k.SHA256)); err != nil {
			return nil, err
		}
		p.hashes = append(p.hashes, h)
		p.consumers = append(p.consumers, k.Consumer)
	}
	return func() sdk.Filter { return &filter{p: p} }, nil
}

// lookup returns the consumer of key, or "". It compares the key's hash
// with every known hash in constant time, so neither the time taken nor
// an early exit tells which (or how many) keys exist.
func (p *policy) lookup(key string) string {
	sum := sha256.Sum256([]byte(key))
	found := -1
	for i := range p.hashes {
		if subtle.ConstantTimeCompare(sum[:], p.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return ""
	}
	return p.consumers[found]
}

type filter struct {
	sdk.BaseFilter
	p *policy
}

// challenge is the WWW-Authenticate header of a 401.
var challenge = [2]string{"www-authenticate", "ApiKey"}

func (f *filter) OnRequest(r *sdk.Request) sdk.Action {
	p := f.p
	// Only the gateway says who the consumer is.
	r.RemoveHeader(p.consumer)
	if r.Method() == "OPTIONS" && r.HasHeader("origin") && r.HasHeader("access-control-request-method") {
		return sdk.Continue // a CORS preflight: browsers send no credentials
	}
	key := r.Header(p.header)
	if key == "" && p.query != "" {
		key = r.Query(p.query)
	}
	if key == "" {
		return r.Deny(401, "API key required", challenge)
	}
	consumer := p.lookup(key)
	if consumer == "" {
		return r.Deny(401, "invalid API key", challenge)
	}
	if p.hide {
		// Wherever the key came from: a second copy must not leak either.
		r.RemoveHeader(p.header)
		if p.query != "" {
			if path := r.Path(); strings.Contains(path, "?") {
				if stripped := removeQuery(path, p.query); stripped != path {
					r.SetHeader(":path", stripped)
				}
			}
		}
	}
	r.SetHeader(p.consumer, consumer)
	if err := proxywasm.SetProperty(ConsumerProperty, []byte(consumer)); err != nil {
		sdk.Warnf("set property keyauth.consumer: %v", err)
	}
	return sdk.Continue
}

// removeQuery removes every occurrence of the query parameter name from
// path, and the "?" if nothing is left.
func removeQuery(path, name string) string {
	base, query, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if unescape(k) != name {
			kept = append(kept, kv)
		}
	}
	if len(kept) == 0 {
		return base
	}
	return base + "?" + strings.Join(kept, "&")
}

// unescape decodes %XX and '+' in a query component (as sdk.Request.Query
// does); a malformed escape is kept as is.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1:i+3]):
			v, _ := hex.DecodeString(s[i+1 : i+3])
			b = append(b, v[0])
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

var plugin = sdk.Plugin[Config]{Name: "keyauth", Start: start}

func main() { sdk.Run(plugin) }
