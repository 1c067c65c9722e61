package compress

// Negotiate picks the coding of a response from the request's
// Accept-Encoding field lines (RFC 9110 §12.5.3) among offered, the
// server's algorithms in its order of preference. It returns Identity
// when the response is to go unencoded.
//
//   - Codings and parameter names are case-insensitive; "x-gzip" is gzip.
//   - A coding's weight is its q (0–1, at most three decimals); without
//     one, 1. A coding not listed takes the weight of "*" if present, or
//     is not acceptable.
//   - q=0 excludes. When a coding is listed twice, the lower weight
//     counts, so an exclusion is never overridden by a repetition.
//   - Identity competes too: its weight is its own, or that of "*", and
//     when neither is listed it is acceptable but loses to any coding.
//     The offered coding of the highest weight wins unless identity
//     weighs more; equal weights go to the server's order.
//   - An element that does not parse (a bad q, a stray character) is
//     ignored, as if absent: a malformed preference accepts nothing.
//   - No header, or an empty one, asks for identity. When identity is
//     excluded too and nothing offered is acceptable, the response still
//     goes unencoded (a gateway does not invent a 406).
//
// Negotiate does not allocate.
func Negotiate(accept []string, offered []Algorithm) Algorithm {
	if len(accept) == 0 || len(offered) == 0 {
		return Identity
	}
	// Weights in thousandths; -1 = not listed.
	var q [numAlgorithms]int
	for i := range q {
		q[i] = -1
	}
	star := -1
	for _, line := range accept {
		for len(line) > 0 {
			var elem string
			elem, line = nextElement(line)
			name, w, ok := parseElement(elem)
			if !ok {
				continue
			}
			slot := &star
			switch {
			case equalFold(name, "gzip"), equalFold(name, "x-gzip"):
				slot = &q[Gzip]
			case equalFold(name, "br"):
				slot = &q[Brotli]
			case equalFold(name, "zstd"):
				slot = &q[Zstd]
			case equalFold(name, "identity"):
				slot = &q[Identity]
			case name == "*":
			default:
				continue
			}
			if *slot < 0 || w < *slot {
				*slot = w
			}
		}
	}
	weight := func(a Algorithm) int {
		if q[a] >= 0 {
			return q[a]
		}
		if a == Identity && star < 0 {
			return 0 // acceptable, but any coding beats it
		}
		return max(star, 0)
	}
	best, bestQ := Identity, 0
	for _, a := range offered {
		if w := weight(a); w > bestQ {
			best, bestQ = a, w
		}
	}
	if best == Identity || bestQ < weight(Identity) {
		return Identity
	}
	return best
}

// nextElement splits off the first comma-separated element of a list.
func nextElement(s string) (elem, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// parseElement parses `coding *( OWS ";" OWS param )` where a param
// "q=qvalue" gives the weight (thousandths) and other params are
// skipped. An empty element is not ok.
func parseElement(s string) (name string, w int, ok bool) {
	s = trimOWS(s)
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", 0, false
	}
	name, s = s[:i], trimOWS(s[i:])
	w = 1000
	for len(s) > 0 {
		if s[0] != ';' {
			return "", 0, false
		}
		s = trimOWS(s[1:])
		j := 0
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		if j == 0 || j == len(s) || s[j] != '=' {
			return "", 0, false
		}
		key := s[:j]
		s = s[j+1:]
		k := 0
		for k < len(s) && s[k] != ';' && s[k] != ' ' && s[k] != '\t' {
			k++
		}
		val := s[:k]
		s = trimOWS(s[k:])
		if equalFold(key, "q") {
			if w, ok = parseQ(val); !ok {
				return "", 0, false
			}
		} else if !validParamValue(val) {
			return "", 0, false
		}
	}
	return name, w, true
}

// parseQ parses a qvalue: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3"0" ], in
// thousandths.
func parseQ(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	w := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return w, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for _, c := range []byte(s[2:]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		w += int(c-'0') * scale
		scale /= 10
	}
	if w > 1000 {
		return 0, false
	}
	return w, true
}

// validParamValue accepts a token or a quoted string without escapes
// that end early.
func validParamValue(v string) bool {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return true
	}
	return isToken(v)
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTokenChar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold compares ASCII case-insensitively (the header's codings are
// ASCII tokens; strings.EqualFold would also fold Unicode, such as the
// Kelvin sign to k).
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
