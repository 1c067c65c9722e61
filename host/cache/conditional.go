package cache

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Validator is the conditional field a revalidation of a stored response
// with this header sends (RFC 9111 §4.3.1): If-None-Match with its ETag,
// else If-Modified-Since with its Last-Modified; "", "" if it has
// neither.
func Validator(stored http.Header) (field, value string) {
	if v := stored["Etag"]; len(v) > 0 && v[0] != "" {
		return "If-None-Match", v[0]
	}
	if v := stored["Last-Modified"]; len(v) > 0 && v[0] != "" {
		return "If-Modified-Since", v[0]
	}
	return "", ""
}

func hasValidator(h http.Header) bool {
	_, v := Validator(h)
	return v != ""
}

// Conditional tells whether a request carries conditional fields of its
// own (RFC 9110 §13.1): the cache then does not add its validator.
func Conditional(req http.Header) bool {
	for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if len(req[k]) > 0 {
			return true
		}
	}
	return false
}

// SameStrongETag tells whether a response (a 304 to a client's own
// conditional request) carries the same strong entity tag as a stored
// response, which selects that stored response for update (RFC 9111
// §4.3.4). Weak tags and Last-Modified do not: the client's validators
// need not be the stored response's.
func SameStrongETag(resp, stored http.Header) bool {
	a, b := resp["Etag"], stored["Etag"]
	if len(a) == 0 || len(b) == 0 || strings.HasPrefix(a[0], "W/") {
		return false
	}
	t, ok := opaque(a[0])
	return ok && t == b[0]
}

// notUpdated are the fields a 304 does not replace in the stored response
// (RFC 9111 §3.2): Content-Length, and the fields describing the stored
// content's coding and range, which must stay those of its body.
var notUpdated = [...]string{"Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding"}

// MergeNotModified is the header of a stored response updated by a 304
// (RFC 9111 §3.2, §4.3.4): each field of the 304 replaces the stored
// one's values, except those of notUpdated. The stored Age goes (it was
// the old response's age; the 304's, if any, counts), and a 304 without
// Date gets responseTime as its Date (RFC 9110 §6.6.1), so that freshness
// and age are counted from the revalidation. The header of the 304 is
// expected without hop-by-hop fields.
func MergeNotModified(stored, notModified http.Header, responseTime time.Time) http.Header {
	out := stored.Clone()
	if out == nil {
		out = http.Header{}
	}
	delete(out, "Age")
	for k, v := range notModified {
		if slices.Contains(notUpdated[:], k) {
			continue
		}
		out[k] = slices.Clone(v)
	}
	if len(notModified["Date"]) == 0 {
		out["Date"] = []string{responseTime.UTC().Format(http.TimeFormat)}
	}
	return out
}

// NotModified tells whether a conditional GET or HEAD (If-None-Match, or
// If-Modified-Since without it: RFC 9110 §13.2.2) is answered 304 by a
// stored 200 response with this header.
func NotModified(req, stored http.Header) bool {
	if inm := req["If-None-Match"]; len(inm) > 0 {
		etag := ""
		if v := stored["Etag"]; len(v) > 0 {
			etag = v[0]
		}
		return MatchNoneMatch(inm, etag)
	}
	ims := req["If-Modified-Since"]
	if len(ims) == 0 {
		return false
	}
	since, err := http.ParseTime(ims[0])
	if err != nil {
		return false // an invalid date is ignored (RFC 9110 §13.1.3)
	}
	lm := stored["Last-Modified"]
	if len(lm) == 0 {
		return false
	}
	mod, err := http.ParseTime(lm[0])
	return err == nil && !mod.After(since)
}

// MatchNoneMatch tells whether If-None-Match field lines match an entity
// tag with the weak comparison (RFC 9110 §13.1.2): "*" matches any
// current representation, a list matches if one of its tags does.
// Malformed members are skipped.
func MatchNoneMatch(lines []string, etag string) bool {
	if etag == "" {
		return false
	}
	want, ok := opaque(etag)
	if !ok {
		return false
	}
	for _, tag := range ParseETags(lines) {
		if tag == "*" {
			return true
		}
		if got, _ := opaque(tag); got == want {
			return true
		}
	}
	return false
}

// ParseETags splits If-None-Match (or If-Match) field lines into their
// members: "*", or entity tags (W/"x" or "x") kept as written. A member
// that is not an entity tag ends the parse of its line.
func ParseETags(lines []string) []string {
	var out []string
	for _, line := range lines {
		s := line
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				out = append(out, "*")
				s = s[1:]
				continue
			}
			start := s
			if strings.HasPrefix(s, "W/") {
				s = s[2:]
			}
			if s == "" || s[0] != '"' {
				break
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				break
			}
			s = s[end+2:]
			out = append(out, start[:len(start)-len(s)])
		}
	}
	return out
}

// opaque returns an entity tag's opaque part (the quoted string, quotes
// included) for the weak comparison.
func opaque(tag string) (string, bool) {
	tag = strings.TrimPrefix(tag, "W/")
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || strings.Contains(tag[1:len(tag)-1], `"`) {
		return "", false
	}
	return tag, true
}
