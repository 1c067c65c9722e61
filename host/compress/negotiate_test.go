package compress

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	all := []Algorithm{Gzip, Brotli, Zstd}
	tests := []struct {
		name    string
		accept  []string // nil: no header
		offered []Algorithm
		want    Algorithm
	}{
		{name: "no header", accept: nil, offered: all, want: Identity},
		{name: "empty header", accept: []string{""}, offered: all, want: Identity},
		{name: "browser list: the server's order wins ties", accept: []string{"gzip, deflate, br, zstd"}, offered: all, want: Gzip},
		{name: "browser list, br preferred by the server", accept: []string{"gzip, deflate, br, zstd"}, offered: []Algorithm{Brotli, Gzip}, want: Brotli},
		{name: "client order does not matter", accept: []string{"zstd, br, gzip"}, offered: all, want: Gzip},
		{name: "q-values beat the server's order", accept: []string{"gzip;q=0.5, br;q=0.9, zstd;q=0.1"}, offered: all, want: Brotli},
		{name: "only what is offered", accept: []string{"br"}, offered: []Algorithm{Gzip}, want: Identity},
		{name: "q=0 excludes", accept: []string{"gzip;q=0, br"}, offered: all, want: Brotli},
		{name: "q=0.000 excludes", accept: []string{"gzip;q=0.000"}, offered: all, want: Identity},
		{name: "identity only", accept: []string{"identity"}, offered: all, want: Identity},
		{name: "identity preferred over gzip", accept: []string{"gzip;q=0.5, identity"}, offered: all, want: Identity},
		{name: "identity tie goes to compression", accept: []string{"gzip;q=0.5, identity;q=0.5"}, offered: all, want: Gzip},
		{name: "implicit identity loses to a weak coding", accept: []string{"gzip;q=0.001"}, offered: all, want: Gzip},
		{name: "star accepts everything", accept: []string{"*"}, offered: []Algorithm{Zstd, Gzip}, want: Zstd},
		{name: "star with an exclusion", accept: []string{"*, zstd;q=0"}, offered: []Algorithm{Zstd, Gzip}, want: Gzip},
		{name: "star;q=0 with identity", accept: []string{"identity, *;q=0"}, offered: all, want: Identity},
		{name: "star;q=0 alone: nothing acceptable, identity anyway", accept: []string{"*;q=0"}, offered: all, want: Identity},
		{name: "explicit coding beats a weaker star", accept: []string{"*;q=0.2, br;q=0.3"}, offered: all, want: Brotli},
		{name: "star weighs identity too", accept: []string{"gzip;q=0.5, *"}, offered: []Algorithm{Gzip}, want: Identity},
		{name: "case-insensitive codings and q", accept: []string{"GZIP;Q=0.4, Br;q=0.3"}, offered: all, want: Gzip},
		{name: "x-gzip is gzip", accept: []string{"x-gzip"}, offered: all, want: Gzip},
		{name: "several field lines", accept: []string{"gzip;q=0.2", "br;q=0.8"}, offered: all, want: Brotli},
		{name: "whitespace around", accept: []string{"  gzip ;\tq=0.5 ,br ; q=0.6  "}, offered: all, want: Brotli},
		{name: "q=1.000", accept: []string{"gzip;q=0.999, br;q=1.000"}, offered: all, want: Brotli},
		{name: "malformed q ignored: q>1", accept: []string{"br;q=1.5, gzip;q=0.1"}, offered: all, want: Gzip},
		{name: "malformed q ignored: four decimals", accept: []string{"br;q=0.5555"}, offered: all, want: Identity},
		{name: "malformed q ignored: not a number", accept: []string{"br;q=high"}, offered: all, want: Identity},
		{name: "malformed q ignored: empty", accept: []string{"br;q="}, offered: all, want: Identity},
		{name: "garbage element ignored", accept: []string{"br garbage, gzip"}, offered: all, want: Gzip},
		{name: "empty elements", accept: []string{",, ,gzip,,"}, offered: all, want: Gzip},
		{name: "other parameters skipped", accept: []string{"br;level=5;q=0.9, gzip;q=0.8"}, offered: all, want: Brotli},
		{name: "duplicate: the exclusion stays", accept: []string{"gzip, gzip;q=0"}, offered: all, want: Identity},
		{name: "duplicate: the lower weight", accept: []string{"gzip;q=0.9, gzip;q=0.1, br;q=0.5"}, offered: all, want: Brotli},
		{name: "unknown codings ignored", accept: []string{"compress, deflate, snappy"}, offered: all, want: Identity},
		{name: "nothing offered", accept: []string{"gzip"}, offered: nil, want: Identity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.accept, tt.offered); got != tt.want {
				t.Errorf("Negotiate(%q, %v) = %v, want %v", tt.accept, tt.offered, got, tt.want)
			}
			if got := refNegotiate(tt.accept, tt.offered); got != tt.want {
				t.Errorf("the reference gives %v, want %v: fix the reference", got, tt.want)
			}
		})
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	accept := []string{"gzip;q=0.8, deflate, br;q=0.9, zstd, *;q=0.1, identity;q=0.5"}
	offered := []Algorithm{Zstd, Brotli, Gzip}
	if n := testing.AllocsPerRun(100, func() { Negotiate(accept, offered) }); n != 0 {
		t.Errorf("Negotiate allocates %v times per call", n)
	}
}

// refNegotiate is a second, plainly written implementation of the rules
// documented on Negotiate, for differential fuzzing.
func refNegotiate(accept []string, offered []Algorithm) Algorithm {
	if len(accept) == 0 || len(offered) == 0 {
		return Identity
	}
	weights := map[string]int{}
	for _, elem := range strings.Split(strings.Join(accept, ","), ",") {
		parts := strings.Split(elem, ";")
		name := strings.ToLower(strings.Trim(parts[0], " \t"))
		if !tokenRE.MatchString(name) {
			continue
		}
		w, ok := 1000, true
		for _, p := range parts[1:] {
			p = strings.Trim(p, " \t")
			key, val, found := strings.Cut(p, "=")
			if !found || !tokenRE.MatchString(key) || strings.ContainsAny(val, " \t") {
				ok = false
				break
			}
			if strings.ToLower(key) == "q" {
				if !qRE.MatchString(val) {
					ok = false
					break
				}
				w = qThousandths(val)
			} else if !tokenRE.MatchString(val) && !quotedRE.MatchString(val) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if name == "x-gzip" {
			name = "gzip"
		}
		if old, seen := weights[name]; !seen || w < old {
			weights[name] = w
		}
	}
	star, hasStar := weights["*"]
	weight := func(a Algorithm) int {
		if w, ok := weights[a.String()]; ok {
			return w
		}
		if !hasStar {
			return 0
		}
		return star
	}
	best, bestQ := Identity, 0
	for _, a := range offered {
		if w := weight(a); w > bestQ {
			best, bestQ = a, w
		}
	}
	if best != Identity && bestQ >= weight(Identity) {
		return best
	}
	return Identity
}

var (
	tokenRE  = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	qRE      = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)
	quotedRE = regexp.MustCompile(`^".*"$`)
)

func qThousandths(v string) int {
	w := int(v[0]-'0') * 1000
	if len(v) > 2 {
		frac := (v[2:] + "000")[:3]
		for i, scale := 0, 100; i < 3; i, scale = i+1, scale/10 {
			w += int(frac[i]-'0') * scale
		}
	}
	return w
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzNegotiate checks Negotiate against the reference implementation and
// against properties the rules imply: the result is offered (or
// identity), case does not matter, nor does the order of the client's
// list.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		"gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1", "identity;q=0, *;q=0",
		"x-gzip;Q=0.5", "gzip;q=0.5;level=\"9\"", "*", "", ",,;", "zstd;q=0.", "br;q=1.000;a=b",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(5))
	}
	orders := [][]Algorithm{
		{Gzip, Brotli, Zstd}, {Gzip, Zstd, Brotli}, {Brotli, Gzip, Zstd},
		{Brotli, Zstd, Gzip}, {Zstd, Gzip, Brotli}, {Zstd, Brotli, Gzip},
		{Gzip}, {Brotli}, {Zstd}, {Brotli, Gzip},
	}
	f.Fuzz(func(t *testing.T, header string, order uint8) {
		offered := orders[int(order)%len(orders)]
		accept := []string{header}
		got := Negotiate(accept, offered)
		if got != Identity && !slices.Contains(offered, got) {
			t.Fatalf("Negotiate(%q, %v) = %v: not offered", header, offered, got)
		}
		if want := refNegotiate(accept, offered); got != want {
			t.Fatalf("Negotiate(%q, %v) = %v, the reference says %v", header, offered, got, want)
		}
		if up := Negotiate([]string{asciiUpper(header)}, offered); up != got {
			t.Fatalf("upper-cased %q gives %v, not %v", header, up, got)
		}
		elems := strings.Split(header, ",")
		slices.Reverse(elems)
		if rev := Negotiate(elems, offered); rev != got {
			t.Fatalf("%q with its elements reversed (as separate lines) gives %v, not %v", header, rev, got)
		}
	})
}
