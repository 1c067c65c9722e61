package configs

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Small checks shared by the validation of every kind. Each records its
// problem on the object and reports whether the value was fine.

// required reports (and records) a missing string.
func (o *object) required(path, value, what string) bool {
	if value != "" {
		return true
	}
	if what == "" {
		o.errorf(path, "required")
	} else {
		o.errorf(path, "required (%s)", what)
	}
	return false
}

// enum checks that value is one of allowed; an empty value is reported as
// missing.
func (o *object) enum(path, value string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	switch s := suggestValue(value, allowed); {
	case value == "":
		o.errorf(path, "required (%s)", orList(allowed))
	case s != "":
		o.errorf(path, "unknown value %q; did you mean %q?", clip(value), s)
	default:
		o.errorf(path, "unknown value %q (want %s)", clip(value), orList(allowed))
	}
	return false
}

// optionalEnum is enum for a field that may be left empty.
func (o *object) optionalEnum(path, value string, allowed ...string) bool {
	return value == "" || o.enum(path, value, allowed...)
}

// intEnum checks that n is one of allowed.
func (o *object) intEnum(path string, n int, allowed ...int) bool {
	if slices.Contains(allowed, n) {
		return true
	}
	strs := make([]string, len(allowed))
	for i, a := range allowed {
		strs[i] = fmt.Sprint(a)
	}
	o.errorf(path, "unknown value %d (want %s)", n, orList(strs))
	return false
}

// between checks lo ≤ n ≤ hi.
func (o *object) between(path string, n, lo, hi int) bool {
	if n < lo || n > hi {
		o.errorf(path, "%d is out of range %d–%d", n, lo, hi)
		return false
	}
	return true
}

// nonNegative checks n ≥ 0.
func (o *object) nonNegative(path string, n int) {
	if n < 0 {
		o.errorf(path, "must not be negative, got %d", n)
	}
}

// port checks a port number; 0 is "missing" when required, "unset"
// otherwise.
func (o *object) port(path string, p int, required bool) {
	switch {
	case p == 0 && required:
		o.errorf(path, "required (1–65535)")
	case p == 0:
	case p < 1 || p > 65535:
		o.errorf(path, "port %d is out of range 1–65535", p)
	}
}

// percent checks an optional percentage.
func (o *object) percent(path string, f *float64) {
	if f != nil && (*f < 0 || *f > 100) {
		o.errorf(path, "%g is out of range 0–100 (a percentage)", *f)
	}
}

// positive checks that an optional duration, when set, is above zero.
func (o *object) positive(path string, d *Duration) {
	if d != nil && d.Duration <= 0 {
		o.errorf(path, "must be greater than 0s")
	}
}

// positiveSize checks that an optional size, when set, is above zero.
func (o *object) positiveSize(path string, s *Size) {
	if s != nil && s.Bytes <= 0 {
		o.errorf(path, "must be greater than 0 bytes")
	}
}

// unique reports every repeated entry of a list.
func (o *object) unique(path string, items []string) {
	first := map[string]int{}
	for i, it := range items {
		if j, dup := first[it]; dup {
			o.errorf(index(path, i), "%q is listed twice (also %s)", clip(it), index(path, j))
			continue
		}
		first[it] = i
	}
}

// lowerAll returns the items in lower case, for case-insensitive
// uniqueness.
func lowerAll(items []string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = strings.ToLower(it)
	}
	return out
}

// cipherSuite checks a TLS 1.2 cipher suite name against Go's secure
// suites (crypto/tls.CipherSuites): Go's insecure ones and TLS 1.3 suites
// (which Go does not let a server choose) are refused.
func (o *object) cipherSuite(path, name string) {
	for _, cs := range tls.CipherSuites() {
		if cs.Name != name {
			continue
		}
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			o.errorf(path, "%s is a TLS 1.3 suite: Go chooses those itself; list TLS 1.2 suites only", name)
		}
		return
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			o.errorf(path, "%s is insecure (crypto/tls.InsecureCipherSuites): not allowed", name)
			return
		}
	}
	o.errorf(path, "unknown cipher suite %q: want a Go name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", clip(name))
}

// subdomain checks a name that must be a DNS-1123 subdomain (a resource
// name); what names it in the message.
func (o *object) subdomain(path, value, what string) bool {
	if !isSubdomain(value) {
		o.errorf(path, "invalid %s %q: %s", what, clip(value), subdomainRule)
		return false
	}
	return true
}

// label checks a name that must be a DNS-1123 label (a namespace, a
// listener name); what names it in the message.
func (o *object) label(path, value, what string) bool {
	if !isLabel(value) {
		o.errorf(path, "invalid %s %q: %s", what, clip(value), labelRule)
		return false
	}
	return true
}

// refNamespace checks the namespace of a reference, unless it is the
// resource's own (checked, and reported, with its metadata).
func (o *object) refNamespace(path, ns string) {
	if ns != o.namespace {
		o.label(path, ns, "namespace")
	}
}

// hostname checks a hostname a listener or a route matches: an exact
// lowercase DNS name, or "*." and one, when wildcard is allowed.
func (o *object) hostname(path, h string, wildcard bool) {
	if msg := hostnameProblem(h, wildcard); msg != "" {
		o.errorf(path, "%s", msg)
	}
}

func hostnameProblem(h string, wildcard bool) string {
	switch {
	case h == "":
		return "empty hostname"
	case h == "*" && wildcard:
		return `"*" is not a hostname; leave hostnames empty to accept any host`
	case strings.ToLower(h) != h:
		return fmt.Sprintf("hostname %q must be lowercase (%q)", clip(h), clip(strings.ToLower(h)))
	}
	rest := h
	if wildcard {
		rest = strings.TrimPrefix(h, "*.")
	}
	switch {
	case strings.Contains(rest, "*") && wildcard:
		return fmt.Sprintf("invalid hostname %q: the only wildcard allowed is a leading \"*.\" (\"*.example.com\")", clip(h))
	case strings.Contains(rest, "*"):
		return fmt.Sprintf("invalid hostname %q: wildcards are not allowed here", clip(h))
	case strings.Contains(rest, ":"):
		return fmt.Sprintf("invalid hostname %q: a hostname has no port", clip(h))
	case !isDNSName(rest):
		return fmt.Sprintf("invalid hostname %q: want a DNS name such as api.example.com", clip(h))
	}
	return ""
}

// token checks an HTTP token (a header name, a method).
func (o *object) token(path, value, what string) bool {
	switch {
	case value == "":
		o.errorf(path, "required (%s)", what)
	case !isToken(value):
		o.errorf(path, "invalid %s %q: letters, digits and !#$%%&'*+-.^_`|~ only", what, clip(value))
	default:
		return true
	}
	return false
}

// method checks an HTTP method: a token, in upper case.
func (o *object) method(path, m string) {
	if !o.token(path, m, "HTTP method") {
		return
	}
	if up := strings.ToUpper(m); up != m {
		o.errorf(path, "HTTP method %q must be uppercase (%q)", clip(m), clip(up))
	}
}

// headerValue checks that a header value cannot split the header.
func (o *object) headerValue(path, v string) {
	if strings.ContainsAny(v, "\r\n\x00") {
		o.errorf(path, "a header value cannot contain line breaks or NUL")
	}
}

// pattern checks a regular expression (RE2 syntax).
func (o *object) pattern(path, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		o.errorf(path, "invalid regular expression (RE2 syntax): %s", msg)
	}
}

// httpURL checks an absolute http or https URL.
func (o *object) httpURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		o.errorf(path, "invalid URL %q: want an absolute http:// or https:// URL", clip(hidePassword(s)))
	}
}

// addrOrPrefix checks an IP address or CIDR prefix.
func (o *object) addrOrPrefix(path, s string) {
	if _, err := netip.ParsePrefix(s); err == nil {
		return
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return
	}
	o.errorf(path, "invalid address %q: want an IP address (10.0.0.1) or a CIDR prefix (10.0.0.0/8)", clip(s))
}

const (
	subdomainRule = "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
	labelRule     = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
)

var (
	labelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// isLabel reports whether s is a DNS-1123 label.
func isLabel(s string) bool { return len(s) <= 63 && labelRE.MatchString(s) }

// isSubdomain reports whether s is a DNS-1123 subdomain.
func isSubdomain(s string) bool { return len(s) <= 253 && subdomainRE.MatchString(s) }

// isDNSName reports whether s is a lowercase DNS name whose labels are
// DNS-1123 labels.
func isDNSName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// orList writes "a", "a or b", "a, b or c".
func orList(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// suggest returns the option that s is most likely a typo of, or "": the
// same word in another case, one a keystroke or two away (more for longer
// words), or the only option containing s ("prot" for "protocol").
func suggest(s string, options []string) string {
	return closest(s, options, func(o string) int {
		switch {
		case len(o) >= 16:
			return 3
		case len(o) >= 8:
			return 2
		}
		return 1
	})
}

// suggestValue is suggest for the value of an enumerated field, more
// cautious: short values a keystroke apart are usually different things
// ("HS512" is not a misspelt "RS512").
func suggestValue(s string, options []string) string {
	return closest(s, options, func(o string) int {
		if len(o) >= 8 {
			return 2
		}
		return 0
	})
}

func closest(s string, options []string, limitFor func(string) int) string {
	for _, o := range options {
		if strings.EqualFold(s, o) {
			return o
		}
	}
	best, bestDist := "", 0
	ls := strings.ToLower(s)
	for _, o := range options {
		limit := limitFor(o)
		// Values that differ in their digits are different things, not
		// typos: "TLS1.1" is not a misspelt "TLS1.2".
		if limit == 0 || len(s) > len(o)+limit || len(o) > len(s)+limit || digits(s) != digits(o) {
			continue
		}
		if d := editDistance(ls, strings.ToLower(o)); d <= limit && (best == "" || d < bestDist) {
			best, bestDist = o, d
		}
	}
	if best != "" || len(s) < 3 {
		return best
	}
	// A shortened or partial word: "prot" for "protocol", "path" for
	// "httpPath", "Open" for "FailOpen". Only when exactly one fits.
	for _, o := range options {
		if strings.Contains(strings.ToLower(o), ls) {
			if best != "" {
				return ""
			}
			best = o
		}
	}
	return best
}

// digits returns the digits of s.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
