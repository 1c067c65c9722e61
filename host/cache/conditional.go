package cache

import (
	"net/http"
	"strings"
)

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
