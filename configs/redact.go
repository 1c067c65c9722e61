package configs

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file hides a configuration's secrets from those who may read it
// (the admin API's GET /config) and lets a resource set pushed back
// (PUT /config) refer to them without seeing them.
//
// The secrets are
//
//	ProxyPolicy   spec.keyAuth.keys[].key   an API key (the sha256 form is not secret: it stays)
//	ProxyPolicy   spec.jwt.hmacSecret       the HS256 shared secret
//	ProxyPolicy   spec.jwt.jwks             an inline JWK's private or symmetric members: d, p, q, dp, dq, qi, oth, k
//	ProxyPolicy   spec.jwt.jwksUri          the password of the URL's userinfo
//	ProxyGateway  spec.tracing.endpoint     the password of the URL's userinfo
//
// A Wasm policy's config and vmConfig are opaque to the gateway: they are
// shown as written, so a user's module should take its secrets from a
// file, not from its configuration. A KeyAuth keysFile's content is never
// part of the configuration shown.
//
// Each secret is replaced by a placeholder, "<redacted:hmac-sha256:…>",
// whose 16 hex digits are an HMAC-SHA-256 of the secret (and of the kind
// of field it is in) under the Redactor's key: equal secrets show equal
// placeholders, and no one without the key can test a guess against one.

// placeholderPrefix starts every placeholder.
const placeholderPrefix = "<redacted:hmac-sha256:"

// placeholderRE matches a whole placeholder.
var placeholderRE = regexp.MustCompile(`^<redacted:hmac-sha256:[0-9a-f]{16}>$`)

// IsPlaceholder reports whether s is a placeholder a Redactor made.
func IsPlaceholder(s string) bool { return placeholderRE.MatchString(s) }

// Classes of secrets: a placeholder is taken back only in a field of the
// class it was made for.
const (
	secretAPIKey = "keyAuth.key"
	secretHMAC   = "jwt.hmacSecret"
	secretJWK    = "jwk"  // a member of an inline JWK, as JSON
	secretURL    = "url"  // a URL's password
	secretJWKS   = "jwks" // a whole redacted JWKS (for an exact match)
)

// privateJWKMembers are the members of a JSON Web Key that are private or
// symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Redactor replaces secrets by placeholders and takes placeholders back.
// It is safe for concurrent use.
type Redactor struct {
	key []byte
}

// NewRedactor returns a Redactor keyed by key; nil: a random key, so that
// placeholders hold for the Redactor's life (a process's, for the admin
// API) and mean nothing after it.
func NewRedactor(key []byte) *Redactor {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic("configs: no randomness for the redaction key: " + err.Error())
		}
	}
	return &Redactor{key: bytes.Clone(key)}
}

// placeholder is the placeholder of secret in a field of class.
func (r *Redactor) placeholder(class, secret string) string {
	m := hmac.New(sha256.New, r.key)
	io.WriteString(m, class)
	m.Write([]byte{0})
	io.WriteString(m, secret)
	return placeholderPrefix + hex.EncodeToString(m.Sum(nil)[:8]) + ">"
}

// Snapshot returns a copy of s whose secrets are placeholders; s is not
// changed. The copy keeps s's Hash: it names the configuration that
// serves, and a resource set pushed back with the same placeholders hashes
// to it again.
func (r *Redactor) Snapshot(s *Snapshot) *Snapshot {
	if s == nil {
		return nil
	}
	out := *s
	out.Gateways = make([]*Gateway, len(s.Gateways))
	for i, g := range s.Gateways {
		out.Gateways[i] = g
		if t := g.Spec.Tracing; t != nil {
			if red, ok := r.redactURL(t.Endpoint); ok {
				cp, tr := *g, *t
				tr.Endpoint = red
				cp.Spec.Tracing = &tr
				out.Gateways[i] = &cp
			}
		}
	}
	out.Policies = make([]*Policy, len(s.Policies))
	for i, p := range s.Policies {
		out.Policies[i] = p
		cp := *p
		changed := false
		if k := p.Spec.KeyAuth; k != nil && len(k.Keys) > 0 {
			ka := *k
			ka.Keys = make([]APIKey, len(k.Keys))
			for j, key := range k.Keys {
				if key.Key != "" {
					key.Key = r.placeholder(secretAPIKey, key.Key)
					changed = true
				}
				ka.Keys[j] = key
			}
			cp.Spec.KeyAuth = &ka
		}
		if j := p.Spec.JWT; j != nil {
			jw := *j
			if jw.HMACSecret != "" {
				jw.HMACSecret = r.placeholder(secretHMAC, jw.HMACSecret)
				changed = true
			}
			if red, ok := r.redactJWKS(jw.JWKS); ok {
				jw.JWKS = red
				changed = true
			}
			if red, ok := r.redactURL(jw.JWKSURI); ok {
				jw.JWKSURI = red
				changed = true
			}
			cp.Spec.JWT = &jw
		}
		if changed {
			out.Policies[i] = &cp
		}
	}
	return &out
}

// redactURL replaces the password of u's userinfo, if any:
// "https://user:<redacted:hmac-sha256:…>@host/…" (not a valid URL, on
// purpose: it cannot be used as it is).
func (r *Redactor) redactURL(u string) (string, bool) {
	if !strings.Contains(u, "@") {
		return u, false
	}
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u, false
	}
	pw, ok := p.User.Password()
	if !ok {
		return u, false
	}
	const mark = "redactedpassword"
	p.User = url.UserPassword(p.User.Username(), mark)
	return strings.Replace(p.String(), ":"+mark+"@", ":"+r.placeholder(secretURL, pw)+"@", 1), true
}

// userinfoPasswordRE finds the password of a URL's userinfo, even in a
// URL that does not parse.
var userinfoPasswordRE = regexp.MustCompile(`^((?:[^:/?#]*://)?[^/?#@:]*):[^/?#@]*@`)

// hidePassword replaces the password of a URL's userinfo by "xxxxx", for
// a problem that quotes the URL.
func hidePassword(s string) string {
	return userinfoPasswordRE.ReplaceAllString(s, "${1}:xxxxx@")
}

// urlPlaceholderRE finds a placeholder in a URL, as written or escaped.
var urlPlaceholderRE = regexp.MustCompile(`(?i)(?:<|%3C)redacted(?::|%3A)hmac-sha256(?::|%3A)([0-9a-f]{16})(?:>|%3E)`)

// redactJWKS replaces the private and symmetric members of the keys of a
// JSON Web Key Set, if any; the result is compact JSON.
func (r *Redactor) redactJWKS(jwks string) (string, bool) {
	set, keys, ok := parseJWKS(jwks)
	if !ok {
		return jwks, false
	}
	changed := false
	for _, k := range keys {
		for _, m := range privateJWKMembers {
			if v, ok := k[m]; ok {
				k[m] = r.placeholder(secretJWK, string(compactJSON(v)))
				changed = true
			}
		}
	}
	if !changed {
		return jwks, false
	}
	return string(compactJSON(set)), true
}

// parseJWKS reads a JSON Web Key Set: the set, and its keys that are
// objects.
func parseJWKS(s string) (set map[string]any, keys []map[string]any, ok bool) {
	if s == "" {
		return nil, nil, false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&set); err != nil {
		return nil, nil, false
	}
	list, _ := set["keys"].([]any)
	for _, k := range list {
		if m, ok := k.(map[string]any); ok {
			keys = append(keys, m)
		}
	}
	return set, keys, true
}

// compactJSON encodes v compactly, without HTML escaping.
func compactJSON(v any) []byte {
	b, err := encodeJSON(v, "")
	if err != nil {
		return nil
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// secretIndex finds the secrets of a running configuration by placeholder.
type secretIndex map[string]string // class + "\x00" + placeholder or redacted value → secret or original value

func (r *Redactor) index(s *Snapshot) secretIndex {
	idx := secretIndex{}
	if s == nil {
		return idx
	}
	addURL := func(u string) {
		if red, ok := r.redactURL(u); ok {
			idx[secretURL+"\x00"+red] = u
			p, _ := url.Parse(u)
			pw, _ := p.User.Password()
			idx[secretURL+"\x00"+r.placeholder(secretURL, pw)] = pw
		}
	}
	for _, g := range s.Gateways {
		if t := g.Spec.Tracing; t != nil {
			addURL(t.Endpoint)
		}
	}
	for _, p := range s.Policies {
		if k := p.Spec.KeyAuth; k != nil {
			for _, key := range k.Keys {
				if key.Key != "" {
					idx[secretAPIKey+"\x00"+r.placeholder(secretAPIKey, key.Key)] = key.Key
				}
			}
		}
		if j := p.Spec.JWT; j != nil {
			if j.HMACSecret != "" {
				idx[secretHMAC+"\x00"+r.placeholder(secretHMAC, j.HMACSecret)] = j.HMACSecret
			}
			if red, ok := r.redactJWKS(j.JWKS); ok {
				idx[secretJWKS+"\x00"+red] = j.JWKS
				_, keys, _ := parseJWKS(j.JWKS)
				for _, k := range keys {
					for _, m := range privateJWKMembers {
						if v, ok := k[m]; ok {
							raw := string(compactJSON(v))
							idx[secretJWK+"\x00"+r.placeholder(secretJWK, raw)] = raw
						}
					}
				}
			}
			addURL(j.JWKSURI)
		}
	}
	return idx
}

// secretFields are the fields that hold secrets, by kind, as field paths
// with list indexes written [].
var secretFields = map[string]map[string]string{
	KindPolicy: {
		"spec.keyAuth.keys[].key": secretAPIKey,
		"spec.jwt.hmacSecret":     secretHMAC,
		"spec.jwt.jwks":           secretJWKS,
		"spec.jwt.jwksUri":        secretURL,
	},
	KindGateway: {
		"spec.tracing.endpoint": secretURL,
	},
}

var listIndexRE = regexp.MustCompile(`\[\d+\]`)

// secretField reports whether the field at path of a resource of kind
// holds a secret, is inside one (a key of a JWKS given as a mapping) or
// contains one (spec.keyAuth.keys given as a string): a problem about it
// must not quote its value.
func secretField(kind, path string) bool {
	p := listIndexRE.ReplaceAllString(path, "[]")
	for f := range secretFields[kind] {
		if p == f || strings.HasPrefix(f, p+".") || strings.HasPrefix(f, p+"[") || strings.HasPrefix(p, f+".") || strings.HasPrefix(p, f+"[") {
			return true
		}
	}
	return false
}

// hideValue removes value, as written or quoted, from a message.
func hideValue(msg, value string) string {
	if value == "" {
		return msg
	}
	for _, v := range []string{strconv.Quote(value), strconv.Quote(clip(value)), value, clip(value)} {
		msg = strings.ReplaceAll(msg, v, "(value not shown)")
	}
	return msg
}

// mentionsPlaceholder reports whether s holds something like a
// placeholder, as written, URL-escaped or JSON-escaped.
func mentionsPlaceholder(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "<redacted:") || strings.Contains(l, "%3credacted") || strings.Contains(l, `\u003credacted`)
}

// splice replaces, in data, the text of each edit's scalar by its value
// as a double-quoted scalar, so that the lines of the rest do not move
// (problems found in the set cite the lines its author wrote). ok is false
// if a scalar's text is not where its node says or spans lines; Restore
// then writes the documents anew.
func splice(data []byte, edits []edit) ([]byte, bool) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	type span struct {
		line, start, end int
		text             []byte
	}
	var spans []span
	for _, e := range edits {
		n := e.node
		if n.Line < 1 || n.Line > len(lines) || n.Column < 1 {
			return nil, false
		}
		line := lines[n.Line-1]
		start := n.Column - 1
		if start > len(line) || !isASCII(line[:start]) { // Column counts characters
			return nil, false
		}
		var raw string
		switch n.Style {
		case 0:
			raw = n.Value
		case yaml.SingleQuotedStyle:
			raw = "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"
		case yaml.DoubleQuotedStyle:
			raw = `"` + n.Value + `"`
			if strings.ContainsAny(n.Value, "\"\\") {
				return nil, false
			}
		default:
			return nil, false
		}
		rest := line[start:]
		if !bytes.HasPrefix(rest, []byte(raw)) || strings.ContainsAny(raw, "\n\r") {
			return nil, false
		}
		if after := rest[len(raw):]; n.Style == 0 && len(after) > 0 && !strings.ContainsRune(" \t\r\n,]}#", rune(after[0])) {
			return nil, false
		}
		spans = append(spans, span{n.Line - 1, start, start + len(raw), compactJSON(e.value)})
	}
	// Right to left within a line, so that earlier offsets hold.
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(b.start, a.start)) })
	for i, sp := range spans {
		if i > 0 && spans[i-1].line == sp.line && spans[i-1].start < sp.end {
			return nil, false
		}
		l := lines[sp.line]
		lines[sp.line] = slices.Concat(l[:sp.start], sp.text, l[sp.end:])
	}
	return bytes.Join(lines, nil), true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Restore takes back the placeholders of f, a resource set based on a
// redacted configuration, with the secrets of running that they stand
// for: the result is what the set would be had its author seen the
// secrets. A placeholder that stands for no secret of running (another
// process's, or a secret changed since), or one in a field that is not
// the secret's, is a Problem naming the field. f is returned unchanged
// when it has no placeholder or is not YAML (loading it will say why);
// otherwise the placeholders' text is replaced in place, keeping every
// line where it was (or, when a placeholder's text cannot be found where
// YAML says it is, the documents are written anew, comments kept).
func (r *Redactor) Restore(f File, running *Snapshot) (File, error) {
	if !mentionsPlaceholder(string(f.Data)) {
		return f, nil
	}
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, nil
		}
		docs = append(docs, &n)
	}
	rs := restorer{r: r, idx: r.index(running), file: f.Name}
	for _, d := range docs {
		if d.Kind != yaml.DocumentNode || len(d.Content) == 0 || d.Content[0].Kind != yaml.MappingNode {
			continue
		}
		root := d.Content[0]
		rs.kind = scalarAt(root, "kind")
		rs.namespace, rs.name = "", ""
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "metadata" {
				rs.name = scalarAt(root.Content[i+1], "name")
				rs.namespace = scalarAt(root.Content[i+1], "namespace")
				if rs.namespace == "" && rs.kind != KindVIP {
					rs.namespace = DefaultNamespace
				}
			}
		}
		rs.walk(root, "")
	}
	if len(rs.problems) > 0 {
		return f, rs.problems.sorted()
	}
	if len(rs.edits) == 0 {
		return f, nil
	}
	if data, ok := splice(f.Data, rs.edits); ok {
		f.Data = data
		return f, nil
	}
	for _, e := range rs.edits {
		e.node.Value, e.node.Tag, e.node.Style = e.value, "!!str", yaml.DoubleQuotedStyle
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return f, Problems{{File: f.Name, Message: "writing the resource set with its secrets: " + err.Error()}}
		}
	}
	if err := enc.Close(); err != nil {
		return f, Problems{{File: f.Name, Message: "writing the resource set with its secrets: " + err.Error()}}
	}
	f.Data = buf.Bytes()
	return f, nil
}

// scalarAt is the scalar value of key in mapping m, or "".
func scalarAt(m *yaml.Node, key string) string {
	if m == nil || m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// restorer is the state of one Restore.
type restorer struct {
	r                     *Redactor
	idx                   secretIndex
	file                  string
	kind, namespace, name string
	problems              Problems
	edits                 []edit
}

// edit is a scalar to replace with a value.
type edit struct {
	node  *yaml.Node
	value string
}

func (rs *restorer) problem(n *yaml.Node, field, format string, args ...any) {
	rs.problems = append(rs.problems, Problem{File: rs.file, Line: n.Line, Kind: rs.kind,
		Namespace: rs.namespace, Name: rs.name, Field: field, Message: fmt.Sprintf(format, args...)})
}

const staleHint = "GET /config again, or give the secret itself"

func (rs *restorer) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			rs.walk(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			rs.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		if mentionsPlaceholder(n.Value) {
			rs.scalar(n, path)
		}
	}
}

// scalar takes back the placeholders of the scalar n at path.
func (rs *restorer) scalar(n *yaml.Node, path string) {
	class, ok := secretFields[rs.kind][listIndexRE.ReplaceAllString(path, "[]")]
	if !ok {
		rs.problem(n, path, "a redacted placeholder is taken back only in the field it was redacted from")
		return
	}
	var value string
	switch class {
	case secretAPIKey, secretHMAC:
		v := strings.TrimSpace(n.Value)
		if !IsPlaceholder(v) {
			rs.problem(n, path, "a redacted placeholder stands for the whole value")
			return
		}
		if value, ok = rs.idx[class+"\x00"+v]; !ok {
			rs.problem(n, path, "the redacted placeholder matches no secret of the running configuration (%s)", staleHint)
			return
		}
	case secretURL:
		if value, ok = rs.idx[class+"\x00"+n.Value]; !ok {
			loc := urlPlaceholderRE.FindStringSubmatchIndex(n.Value)
			if loc == nil || loc[0] == 0 || n.Value[loc[0]-1] != ':' || loc[1] == len(n.Value) || n.Value[loc[1]] != '@' {
				rs.problem(n, path, "a redacted placeholder is taken back only as the password of the URL (user:<redacted:…>@host)")
				return
			}
			ph := placeholderPrefix + strings.ToLower(n.Value[loc[2]:loc[3]]) + ">"
			secret, ok := rs.idx[class+"\x00"+ph]
			if !ok {
				rs.problem(n, path, "the URL's redacted password matches no secret of the running configuration (%s)", staleHint)
				return
			}
			escaped := strings.TrimPrefix(url.UserPassword("", secret).String(), ":")
			value = n.Value[:loc[0]] + escaped + n.Value[loc[1]:]
		}
	case secretJWKS:
		if value, ok = rs.idx[class+"\x00"+n.Value]; !ok {
			var msg string
			if value, msg = rs.jwks(n.Value); msg != "" {
				rs.problem(n, path, "%s", msg)
				return
			}
		}
	}
	rs.edits = append(rs.edits, edit{node: n, value: value})
}

// jwks takes back the placeholders of an inline JWKS's members.
func (rs *restorer) jwks(s string) (string, string) {
	set, keys, ok := parseJWKS(s)
	if !ok {
		return "", "a redacted placeholder in a JWKS that is not JSON"
	}
	for i, k := range keys {
		for m, v := range k {
			str, isStr := v.(string)
			if !isStr || !mentionsPlaceholder(str) {
				continue
			}
			raw, found := rs.idx[secretJWK+"\x00"+str]
			if !found {
				return "", fmt.Sprintf("keys[%d].%s: the redacted placeholder matches no secret of the running configuration (%s)", i, m, staleHint)
			}
			k[m] = json.RawMessage(raw)
		}
	}
	out := string(compactJSON(set))
	if mentionsPlaceholder(out) {
		return "", "a redacted placeholder is taken back only as a member of one of the set's keys"
	}
	return out, ""
}
