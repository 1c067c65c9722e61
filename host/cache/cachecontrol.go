package cache

import (
	"strconv"
	"strings"
)

// Directives are the Cache-Control directives (RFC 9111 §5.2) the cache
// acts on. A delta-seconds directive that is absent is -1; a malformed
// value of max-age or s-maxage counts as 0 (RFC 9111 §4.2.1: a cache must
// not reuse a response whose freshness it cannot read), of the others as
// absent.
type Directives struct {
	NoStore         bool
	NoCache         bool // qualified (no-cache="field") or not
	Private         bool // qualified (private="field") or not
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	OnlyIfCached    bool

	MaxAge               int64
	SMaxAge              int64
	MaxStale             int64 // a bare max-stale is maxDelta (any staleness)
	MinFresh             int64
	StaleWhileRevalidate int64
	StaleIfError         int64
}

// maxDelta is the largest delta-seconds the cache keeps: RFC 9111 §1.2.2
// asks for at least 2^31 and says to use it when a value overflows.
const maxDelta = 1<<31 - 1

// ParseCacheControl parses the Cache-Control field lines of a request or
// a response. Directive names are case-insensitive; unknown directives
// and extensions are ignored. When a directive repeats, the first one
// counts, except that a repeated max-age or s-maxage with different
// values makes it 0 (the cache cannot tell which one the sender meant).
func ParseCacheControl(lines []string) Directives {
	d := Directives{MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1, StaleWhileRevalidate: -1, StaleIfError: -1}
	for _, line := range lines {
		for rest := line; rest != ""; {
			var name, value string
			var quoted bool
			name, value, quoted, rest = nextDirective(rest)
			switch strings.ToLower(name) {
			case "no-store":
				d.NoStore = true
			case "no-cache":
				d.NoCache = true
			case "private":
				d.Private = true
			case "public":
				d.Public = true
			case "must-revalidate":
				d.MustRevalidate = true
			case "proxy-revalidate":
				d.ProxyRevalidate = true
			case "only-if-cached":
				d.OnlyIfCached = true
			case "max-age":
				setAge(&d.MaxAge, value, quoted)
			case "s-maxage":
				setAge(&d.SMaxAge, value, quoted)
			case "max-stale":
				if value == "" && !quoted {
					if d.MaxStale < 0 {
						d.MaxStale = maxDelta
					}
				} else if n, ok := parseDelta(value); ok && d.MaxStale < 0 {
					d.MaxStale = n
				}
			case "min-fresh":
				if n, ok := parseDelta(value); ok && d.MinFresh < 0 {
					d.MinFresh = n
				}
			case "stale-while-revalidate":
				if n, ok := parseDelta(value); ok && d.StaleWhileRevalidate < 0 {
					d.StaleWhileRevalidate = n
				}
			case "stale-if-error":
				if n, ok := parseDelta(value); ok && d.StaleIfError < 0 {
					d.StaleIfError = n
				}
			}
		}
	}
	return d
}

// setAge records a max-age or s-maxage: malformed or conflicting values
// make it 0 (stale at once).
func setAge(dst *int64, value string, quoted bool) {
	n, ok := parseDelta(value)
	if !ok || quoted { // the token form is the one to send; a quoted one is not understood
		n = 0
	}
	if *dst >= 0 && *dst != n {
		n = 0
	}
	*dst = n
}

// parseDelta parses delta-seconds: 1*DIGIT, capped at maxDelta.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDelta {
		return maxDelta, true // only overflow fails: all digits
	}
	return n, true
}

// nextDirective splits the first directive off a Cache-Control line:
// token [ "=" ( token / quoted-string ) ], then a comma.
func nextDirective(s string) (name, value string, quoted bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' {
		i++
	}
	name = strings.TrimSpace(s[:i])
	if i == len(s) || s[i] == ',' {
		return name, "", false, s[i:]
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if s != "" && s[0] == '"' {
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j < len(s) {
			j++ // closing quote
		}
		rest = s[j:]
		if k := strings.IndexByte(rest, ','); k >= 0 {
			rest = rest[k:]
		} else {
			rest = ""
		}
		return name, b.String(), true, rest
	}
	j := strings.IndexByte(s, ',')
	if j < 0 {
		j = len(s)
	}
	return name, strings.TrimSpace(s[:j]), false, s[j:]
}

// String formats the directives as one Cache-Control value, in a fixed
// order: ParseCacheControl gives back what String was called on.
func (d Directives) String() string {
	var parts []string
	flag := func(on bool, name string) {
		if on {
			parts = append(parts, name)
		}
	}
	delta := func(n int64, name string) {
		if n >= 0 {
			parts = append(parts, name+"="+strconv.FormatInt(n, 10))
		}
	}
	flag(d.NoStore, "no-store")
	flag(d.NoCache, "no-cache")
	flag(d.Private, "private")
	flag(d.Public, "public")
	flag(d.MustRevalidate, "must-revalidate")
	flag(d.ProxyRevalidate, "proxy-revalidate")
	flag(d.OnlyIfCached, "only-if-cached")
	delta(d.MaxAge, "max-age")
	delta(d.SMaxAge, "s-maxage")
	if d.MaxStale == maxDelta {
		parts = append(parts, "max-stale")
	} else {
		delta(d.MaxStale, "max-stale")
	}
	delta(d.MinFresh, "min-fresh")
	delta(d.StaleWhileRevalidate, "stale-while-revalidate")
	delta(d.StaleIfError, "stale-if-error")
	return strings.Join(parts, ", ")
}
