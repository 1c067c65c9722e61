// Package configs is NovaEdge's configuration: the five resource kinds
// (ProxyVIP, ProxyGateway, ProxyBackend, ProxyRoute, ProxyPolicy), their
// strict decoding from YAML, defaults, validation and cross-references, and
// the immutable Snapshot the data plane serves from.
//
// It is the leaf of the module: it imports nothing else of NovaEdge.
package configs

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Snapshot is a validated, defaulted, immutable set of resources. Nothing
// may modify a Snapshot after Load returns it; the data plane builds its
// own structures from it.
type Snapshot struct {
	VIPs     []*VIP     `json:"vips"`     // sorted by name
	Gateways []*Gateway `json:"gateways"` // sorted by namespace/name
	Backends []*Backend `json:"backends"` // sorted by namespace/name
	Routes   []*Route   `json:"routes"`   // sorted by namespace/name
	Policies []*Policy  `json:"policies"` // sorted by namespace/name
	// Hash is the hex SHA-256 of the canonical JSON of the resources above
	// (sources excluded): equal resource sets have equal hashes whatever
	// the file layout, order or comments.
	Hash string `json:"hash"`
}

// File is one named YAML document stream (a file's name and contents).
type File struct {
	Name string
	Data []byte
	// Dir, if set, is the directory the paths its resources name are
	// relative to (default: the directory of Name), for documents that
	// are not files, such as a set pushed to the admin API.
	Dir string
}

// VIP returns the ProxyVIP called name, or nil.
func (s *Snapshot) VIP(name string) *VIP {
	if s == nil {
		return nil
	}
	return find(s.VIPs, "", name, func(r *VIP) *ObjectMeta { return &r.Metadata })
}

// Gateway returns the ProxyGateway namespace/name, or nil.
func (s *Snapshot) Gateway(namespace, name string) *Gateway {
	if s == nil {
		return nil
	}
	return find(s.Gateways, namespace, name, func(r *Gateway) *ObjectMeta { return &r.Metadata })
}

// Backend returns the ProxyBackend namespace/name, or nil.
func (s *Snapshot) Backend(namespace, name string) *Backend {
	if s == nil {
		return nil
	}
	return find(s.Backends, namespace, name, func(r *Backend) *ObjectMeta { return &r.Metadata })
}

// Route returns the ProxyRoute namespace/name, or nil.
func (s *Snapshot) Route(namespace, name string) *Route {
	if s == nil {
		return nil
	}
	return find(s.Routes, namespace, name, func(r *Route) *ObjectMeta { return &r.Metadata })
}

// Policy returns the ProxyPolicy namespace/name, or nil.
func (s *Snapshot) Policy(namespace, name string) *Policy {
	if s == nil {
		return nil
	}
	return find(s.Policies, namespace, name, func(r *Policy) *ObjectMeta { return &r.Metadata })
}

// find looks namespace/name up in a list sorted by namespace and name.
func find[T any](rs []*T, namespace, name string, meta func(*T) *ObjectMeta) *T {
	i, ok := slices.BinarySearchFunc(rs, [2]string{namespace, name}, func(r *T, key [2]string) int {
		m := meta(r)
		return cmp.Or(cmp.Compare(m.Namespace, key[0]), cmp.Compare(m.Name, key[1]))
	})
	if !ok {
		return nil
	}
	return rs[i]
}

// JSON returns the snapshot as indented JSON: every resource with its
// defaults, in canonical order, and the hash. It is what the admin API
// serves as the effective configuration and what golden tests compare.
func (s *Snapshot) JSON() ([]byte, error) {
	return encodeJSON(s, "  ")
}

// contentHash is the hex SHA-256 of the compact canonical JSON of the
// resources, without the hash itself.
func (s *Snapshot) contentHash() (string, error) {
	b, err := encodeJSON(struct {
		VIPs     []*VIP     `json:"vips"`
		Gateways []*Gateway `json:"gateways"`
		Backends []*Backend `json:"backends"`
		Routes   []*Route   `json:"routes"`
		Policies []*Policy  `json:"policies"`
	}{s.VIPs, s.Gateways, s.Backends, s.Routes, s.Policies}, "")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// encodeJSON writes v as JSON without HTML escaping ("&" stays "&" in a
// URL), indented when indent is not empty. Struct fields keep their
// declaration order and map keys are sorted, so equal values encode to
// equal bytes.
func encodeJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// YAML returns the snapshot's resources as a stream of YAML documents, with
// their defaults: what PUT /config takes back. Map keys come out sorted.
func (s *Snapshot) YAML() ([]byte, error) {
	var docs []any
	for _, r := range s.VIPs {
		docs = append(docs, r)
	}
	for _, r := range s.Gateways {
		docs = append(docs, r)
	}
	for _, r := range s.Backends {
		docs = append(docs, r)
	}
	for _, r := range s.Routes {
		docs = append(docs, r)
	}
	for _, r := range s.Policies {
		docs = append(docs, r)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		// Through JSON, so that the documents use the resources' JSON
		// field names and omit what JSON omits.
		b, err := encodeJSON(d, "")
		if err != nil {
			return nil, err
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // integers stay exact
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if err := enc.Encode(yamlNumbers(v)); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// yamlNumbers replaces the json.Numbers in v by int64s or float64s, which
// YAML writes as numbers.
func yamlNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = yamlNumbers(e)
		}
	}
	return v
}
