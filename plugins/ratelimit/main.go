// Command ratelimit is NovaEdge's RateLimit policy: a token bucket per key
// (an API key header, the client address, a JWT claim, the route, or one
// for everything), kept by the host so that every VM of the plugin shares
// it. Over the limit a request gets 429 with Retry-After; every response
// carries the X-RateLimit-* and the IETF RateLimit-Policy / RateLimit
// headers. See README.md.
package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// Config is the plugin's configuration: the wire format the host sends
// (firstparty.RateLimit: a ProxyPolicy's spec.rateLimit), with the
// plugin's own Validate.
type Config firstparty.RateLimit

// Validate checks the configuration.
func (c *Config) Validate() error {
	if !(c.RequestsPerSecond >= 0.001 && c.RequestsPerSecond <= 1e9) {
		return errors.New("requestsPerSecond: must be between 0.001 and 1e9")
	}
	if c.Burst < 0 || c.Burst > 1e9 {
		return errors.New("burst: must be between 0 and 1000000000")
	}
	kind, name, _ := strings.Cut(c.Key, ":")
	switch kind {
	case "header", "claim":
		if name == "" || strings.ContainsAny(name, " \t") {
			return errors.New("key: " + strconv.Quote(c.Key) + ": want " + kind + ":NAME")
		}
	case "", "ip", "route", "global":
		if c.Key != kind {
			return errors.New("key: " + strconv.Quote(c.Key) + ": " + kind + " takes no argument")
		}
	default:
		return errors.New("key: " + strconv.Quote(c.Key) + ": want ip, route, global, header:NAME or claim:NAME")
	}
	switch c.OnMissingKey {
	case "", "ip", "reject":
	default:
		return errors.New("onMissingKey: " + strconv.Quote(c.OnMissingKey) + ": want ip or reject")
	}
	return nil
}

// hostTake is the host function that keeps the buckets
// (host/policy/firstparty_ratelimit.go documents its encoding).
const hostTake = firstparty.RateLimitTake

// Key kinds.
const (
	keyIP = iota
	keyHeader
	keyClaim
	keyRoute
	keyGlobal
)

// policy is a configuration made ready.
type policy struct {
	kind   int
	name   string // header or claim name
	reject bool   // a request without the key gets 401
	rate   uint64 // thousandths of a token per second
	burst  uint64
	// Header values that do not change.
	limit, policyHeader string
	item                string // the RateLimit item's name, as an sf-string
	// take is hostTake's argument without the key (version, rate, burst,
	// cost 1), and arg a buffer to build arguments in: the VM runs one
	// callback at a time, and the host copies the argument.
	take, arg []byte
	free      sdk.Filters[filter] // ended requests' filters, for reuse
}

func start(cfg *Config) (sdk.NewFilter, error) {
	p := &policy{reject: cfg.OnMissingKey == "reject"}
	kind, name, _ := strings.Cut(cfg.Key, ":")
	switch kind {
	case "header":
		p.kind, p.name = keyHeader, strings.ToLower(name)
	case "claim":
		p.kind, p.name = keyClaim, name
	case "route":
		p.kind = keyRoute
	case "global":
		p.kind = keyGlobal
	}
	p.rate = uint64(math.Round(cfg.RequestsPerSecond * 1000))
	if p.rate == 0 {
		p.rate = 1
	}
	p.burst = uint64(cfg.Burst)
	if p.burst == 0 {
		p.burst = max(1, uint64(math.Ceil(cfg.RequestsPerSecond)))
	}
	p.limit = strconv.FormatUint(p.burst, 10)
	// RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-09/10): the
	// quota q is the burst, over the window w in which an empty bucket
	// fills up again (whole seconds, rounded up: never overstating).
	w := max(1, (p.burst*1000+p.rate-1)/p.rate)
	p.item = sfString(sdk.Property("plugin_name"))
	p.policyHeader = p.item + ";q=" + p.limit + ";w=" + strconv.FormatUint(w, 10)
	p.take = firstparty.AppendRateLimitTake(nil, &firstparty.RateLimitTakeArgs{Rate: p.rate, Burst: p.burst, Cost: 1})
	return p.newFilter, nil
}

// newFilter returns a filter for a request: one that an ended request
// left, or a new one. A TinyGo guest pays dearly for every allocation (its
// allocator and collector walk the heap), so the request path makes none
// of its own beyond the response's header values.
func (p *policy) newFilter() sdk.Filter {
	if f := p.free.Get(); f != nil {
		return f
	}
	return &filter{p: p}
}

// OnDone puts the filter up for reuse.
func (f *filter) OnDone() {
	p := f.p
	f.res, f.ok = result{}, false // (buf is overwritten before use)
	p.free.Put(f)
}

// sfString quotes name as a structured-field string, "default" if empty.
func sfString(name string) string {
	if name == "" {
		name = "default"
	}
	b := []byte{'"'}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

type filter struct {
	sdk.BaseFilter
	p   *policy
	res result
	ok  bool // res is set
	// buf holds the response's header values (values): the host copies
	// a header value when it is set, so the filter's own buffer serves
	// every request it is reused for.
	buf [96]byte
}

// result is the host's answer (see hostTake).
type result struct {
	allowed    bool
	remaining  uint64
	retryAfter uint64 // ms
	reset      uint64 // ms
}

// appendKey appends the bucket key of the request to dst, or returns the
// missing key's description when the request has none and must be
// rejected.
func (f *filter) appendKey(dst []byte, r *sdk.Request) (arg []byte, missing string) {
	p := f.p
	switch p.kind {
	case keyHeader:
		if v := r.Header(p.name); v != "" {
			return append(append(dst, "h:"...), v...), ""
		}
		missing = "header " + p.name
	case keyClaim:
		if v := sdk.Property("jwt_claims", p.name); v != "" {
			return append(append(dst, "c:"...), v...), ""
		}
		missing = "claim " + p.name
	case keyRoute:
		return append(append(dst, "r:"...), r.Route()...), ""
	case keyGlobal:
		return append(dst, 'g'), ""
	}
	if missing != "" && p.reject {
		return dst, missing
	}
	return append(append(dst, "ip:"...), r.ClientIP()...), ""
}

func (f *filter) OnRequest(r *sdk.Request) sdk.Action {
	p := f.p
	arg, missing := f.appendKey(append(p.arg[:0], p.take...), r)
	p.arg = arg // keep the grown buffer
	if missing != "" {
		return r.Deny(401, "rate limit: missing "+missing)
	}
	out, err := sdk.CallHost(hostTake, arg)
	if err == nil {
		f.res, err = decodeResult(out)
	}
	if err != nil {
		// Not NovaEdge's host, or a host without the buckets: a trap,
		// so that the policy's failurePolicy decides.
		panic("ratelimit: " + hostTake + ": " + err.Error())
	}
	f.ok = true
	if f.res.allowed {
		return sdk.Continue
	}
	h := f.headers()
	h = append(h, [2]string{"retry-after", strconv.FormatUint(seconds(f.res.retryAfter), 10)})
	return r.Deny(429, "rate limit exceeded", h...)
}

func (f *filter) OnResponse(r *sdk.Response) sdk.Action {
	if !f.ok {
		return sdk.Continue
	}
	remaining, reset, item := f.values()
	r.SetHeader("x-ratelimit-limit", f.p.limit)
	r.SetHeader("x-ratelimit-remaining", remaining)
	r.SetHeader("x-ratelimit-reset", reset)
	r.SetHeader("ratelimit-policy", f.p.policyHeader)
	r.SetHeader("ratelimit", item)
	return sdk.Continue
}

// headers are the rate-limit headers of a response.
func (f *filter) headers() [][2]string {
	remaining, reset, item := f.values()
	return [][2]string{
		{"x-ratelimit-limit", f.p.limit},
		{"x-ratelimit-remaining", remaining},
		{"x-ratelimit-reset", reset},
		{"ratelimit-policy", f.p.policyHeader},
		{"ratelimit", item},
	}
}

// values returns the values of X-RateLimit-Remaining, X-RateLimit-Reset
// and RateLimit, as strings over f.buf (or, with a plugin name too long for
// it, over one allocation), valid until the filter's next request.
func (f *filter) values() (remaining, reset, item string) {
	b := strconv.AppendUint(f.buf[:0], f.res.remaining, 10)
	nr := len(b)
	b = strconv.AppendUint(b, seconds(f.res.reset), 10)
	nt := len(b)
	b = append(b, f.p.item...)
	b = append(b, ";r="...)
	b = append(b, b[:nr]...)
	b = append(b, ";t="...)
	b = append(b, b[nr:nt]...)
	s := unsafe.String(unsafe.SliceData(b), len(b))
	return s[:nr], s[nr:nt], s[nt:]
}

// seconds rounds milliseconds up to whole seconds.
func seconds(ms uint64) uint64 { return (ms + 999) / 1000 }

// decodeResult decodes the host's answer (firstparty.RateLimitTakeResult).
func decodeResult(b []byte) (result, error) {
	r, err := firstparty.DecodeRateLimitTakeResult(b)
	if err != nil {
		return result{}, err
	}
	return result{allowed: r.Allowed, remaining: r.Remaining, retryAfter: r.RetryAfter, reset: r.Reset}, nil
}

// heapReserve grows the VM's heap at start (sdk.Plugin.HeapReserve): the
// collector then runs rarely.
const heapReserve = 512 << 10

var plugin = sdk.Plugin[Config]{Name: "ratelimit", Start: start, HeapReserve: heapReserve}

func main() { sdk.Run(plugin) }
