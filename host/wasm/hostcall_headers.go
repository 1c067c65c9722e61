package wasm

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Header maps (proxy_map_type_t):
//
//	0 request headers    the h of OnRequestHeaders + request pseudo-headers
//	1 request trailers   the t of OnRequestTrailers
//	2 response headers   the h of OnResponseHeaders + ":status"
//	3 response trailers  the t of OnResponseTrailers
//	4, 5 gRPC metadata   never present (no gRPC calls)
//	6 http call response headers   read-only, during proxy_on_http_call_response
//	7 http call response trailers  read-only, idem, when the response had some
//
// Maps 0 to 3 are present from their callback until the stream ends, but
// only while one of the stream's callbacks runs or the stream is paused.
// Keys are compared case-insensitively and returned in lower case.
//
// The statuses are those of proxy-wasm-cpp-host (src/exports.cc: a type
// above 7 is BadArgument, then a bad guest range InvalidMemoryAccess) over
// Envoy's maps (source/extensions/common/wasm/context.cc: getMap,
// getConstMap): a map that is not present is BadArgument for every call but
// proxy_get_header_map_pairs, which returns it as an empty map (Ok, nothing
// written); a key missing from a present map is NotFound.

// maxMapType is the highest proxy_map_type_t.
const maxMapType = mapHTTPCallResponseTrailer

// headerMap is one map as the host functions see it.
type headerMap struct {
	h      http.Header
	req    *http.Request // request pseudo-headers, if non-nil
	status *int          // response ":status", if non-nil
	ro     [][2]string   // read-only pairs (http call response)
	isRO   bool
	keys   map[string]string // the VM's interned header names (vm.keys), if any
}

// headerMap resolves a map type for the effective context: BadArgument for
// a type above maxMapType and for a map not present now.
func (v *vm) headerMap(mt uint32) (headerMap, status) {
	s := v.cur
	switch mt {
	case mapRequestHeaders:
		if s == nil || !s.attached || s.reqHeaders == nil {
			return headerMap{}, statusBadArgument
		}
		return headerMap{h: s.reqHeaders, req: s.info.Request}, statusOK
	case mapResponseHeaders:
		if s == nil || !s.attached || s.respHeaders == nil {
			return headerMap{}, statusBadArgument
		}
		return headerMap{h: s.respHeaders, status: &s.status}, statusOK
	case mapRequestTrailers, mapResponseTrailers:
		if s == nil || !s.attached {
			return headerMap{}, statusBadArgument
		}
		h := s.reqTrailers
		if mt == mapResponseTrailers {
			h = s.respTrailers
		}
		if h == nil {
			return headerMap{}, statusBadArgument // no trailers (yet)
		}
		return headerMap{h: h}, statusOK
	case mapHTTPCallResponseHeaders, mapHTTPCallResponseTrailer:
		r := v.httpResp
		if r == nil {
			return headerMap{}, statusBadArgument
		}
		if mt == mapHTTPCallResponseTrailer {
			if r.Trailers == nil {
				return headerMap{}, statusBadArgument
			}
			return headerMap{ro: r.Trailers, isRO: true}, statusOK
		}
		ro := make([][2]string, 0, len(r.Headers)+1)
		if r.Status != 0 {
			ro = append(ro, [2]string{":status", strconv.Itoa(r.Status)})
		}
		return headerMap{ro: append(ro, r.Headers...), isRO: true}, statusOK
	}
	return headerMap{}, statusBadArgument // gRPC metadata, unknown types
}

func (m headerMap) pseudo(key string) (string, bool) {
	if m.req != nil {
		r := m.req
		switch key {
		case ":method":
			return r.Method, true
		case ":path":
			if r.URL == nil {
				return "", false
			}
			return r.URL.RequestURI(), true
		case ":authority":
			return r.Host, true
		case ":scheme":
			if r.URL != nil && r.URL.Scheme != "" {
				return r.URL.Scheme, true
			}
			if r.TLS != nil {
				return "https", true
			}
			return "http", true
		}
	}
	if m.status != nil && key == ":status" {
		return strconv.Itoa(*m.status), true
	}
	return "", false
}

// setPseudo applies a pseudo-header; false means key is not one of this map.
func (m headerMap) setPseudo(key, value string) (status, bool) {
	if m.req != nil {
		r := m.req
		switch key {
		case ":method":
			r.Method = value
		case ":path":
			u, err := url.ParseRequestURI(value)
			if err != nil {
				return statusBadArgument, true
			}
			if r.URL == nil {
				r.URL = &url.URL{}
			}
			r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			r.RequestURI = value
		case ":authority":
			r.Host = value
		case ":scheme":
			if r.URL == nil {
				r.URL = &url.URL{}
			}
			r.URL.Scheme = value
		default:
			return 0, false
		}
		return statusOK, true
	}
	if m.status != nil && key == ":status" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 100 || n > 999 {
			return statusBadArgument, true
		}
		*m.status = n
		return statusOK, true
	}
	return 0, false
}

var requestPseudo = []string{":authority", ":path", ":method", ":scheme"}

// pairs returns the map's entries: pseudo-headers first, then h's keys in
// sorted order, lower-cased, one pair per value.
func (m headerMap) pairs() [][2]string {
	if m.isRO {
		return m.ro
	}
	out := make([][2]string, 0, len(m.h)+4)
	if m.req != nil {
		for _, k := range requestPseudo {
			if v, ok := m.pseudo(k); ok {
				out = append(out, [2]string{k, v})
			}
		}
	}
	if m.status != nil {
		v, _ := m.pseudo(":status")
		out = append(out, [2]string{":status", v})
	}
	keys := make([]string, 0, len(m.h))
	for k := range m.h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		for _, v := range m.h[k] {
			out = append(out, [2]string{lk, v})
		}
	}
	return out
}

// get returns the first value of key.
func (m headerMap) get(key []byte) (string, bool) {
	if m.isRO {
		for _, p := range m.ro {
			if equalFoldBytes(p[0], key) {
				return p[1], true
			}
		}
		return "", false
	}
	if len(key) > 0 && key[0] == ':' {
		return m.pseudo(string(key))
	}
	var buf [64]byte
	vs := m.h[string(appendCanonicalKey(buf[:0], key))] // no allocation for the lookup
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// change adds (add), replaces (replace) or removes (neither, value ignored).
// key may be guest memory: it is copied only when it is stored.
func (m headerMap) change(key []byte, value string, add, replace bool) status {
	if m.isRO {
		return statusBadArgument
	}
	if len(key) > 0 && key[0] == ':' {
		if !add && !replace {
			return statusOK // pseudo-headers cannot be removed; ignored
		}
		if st, ok := m.setPseudo(string(key), value); ok {
			return st
		}
		return statusBadArgument
	}
	var buf [64]byte
	ck := appendCanonicalKey(buf[:0], key)
	switch {
	case add:
		k := internKey(m.keys, ck)
		m.h[k] = append(m.h[k], value)
	case replace:
		m.h[internKey(m.keys, ck)] = []string{value}
	default:
		if _, ok := m.h[string(ck)]; ok {
			delete(m.h, string(ck))
		}
	}
	return statusOK
}

// appendCanonicalKey appends http.CanonicalHeaderKey(string(key)) to dst
// without allocating a string for keys made of letters, digits and '-' (the
// common case); other keys take http.CanonicalHeaderKey's path.
func appendCanonicalKey(dst, key []byte) []byte {
	upper := true
	start := len(dst)
	for _, c := range key {
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case 'A' <= c && c <= 'Z':
			if !upper {
				c += 'a' - 'A'
			}
		case '0' <= c && c <= '9', c == '-':
		default:
			return append(dst[:start], http.CanonicalHeaderKey(string(key))...)
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

// equalFoldBytes is strings.EqualFold(s, string(b)) without converting b.
func equalFoldBytes(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return strings.EqualFold(s, string(b)) // non-ASCII: the full rules
		}
	}
	return true
}

// setAll replaces every entry of the map with pairs.
func (m headerMap) setAll(pairs [][2]string) status {
	if m.isRO {
		return statusBadArgument
	}
	clear(m.h)
	for _, p := range pairs {
		if strings.HasPrefix(p[0], ":") {
			if st, ok := m.setPseudo(p[0], p[1]); ok && st != statusOK {
				return st
			}
			continue
		}
		ck := http.CanonicalHeaderKey(p[0])
		m.h[ck] = append(m.h[ck], p[1])
	}
	return statusOK
}

// proxy_get_header_map_value(i32 map_type, i32 key_data, i32 key_size,
// i32 return_value_data, i32 return_value_size) -> i32 status
//
// Copies the first value of key into guest memory allocated with
// proxy_on_memory_allocate and stores its address and size (u32 LE each) at
// return_value_data and return_value_size (0 and 0 for an empty value).
// Status: OK; NotFound (no such key); BadArgument (map type, or map not
// present); InvalidMemoryAccess (bad key or return range).
func proxyGetHeaderMapValue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	if arg(st, 0) > maxMapType {
		return statusBadArgument
	}
	key, ok := read(mem, arg(st, 1), arg(st, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	m, s := v.headerMap(arg(st, 0))
	if s != statusOK {
		return s
	}
	val, found := m.get(key)
	if !found {
		return statusNotFound
	}
	v.scratch = append(v.scratch[:0], val...)
	return v.writeOut(ctx, mem, v.scratch, arg(st, 3), arg(st, 4))
}

// proxy_add_header_map_value(i32 map_type, i32 key_data, i32 key_size,
// i32 value_data, i32 value_size) -> i32 status
//
// Adds a value to key (setting a pseudo-header replaces it).
// Status: OK; BadArgument (map type, map not present, read-only map, bad
// pseudo-header value); InvalidMemoryAccess (bad key or value range).
func proxyAddHeaderMapValue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return changeHeader(v, mem, st, true, false)
}

// proxy_replace_header_map_value(i32 map_type, i32 key_data, i32 key_size,
// i32 value_data, i32 value_size) -> i32 status
//
// Replaces every value of key with one. Status: as proxy_add_header_map_value.
func proxyReplaceHeaderMapValue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return changeHeader(v, mem, st, false, true)
}

// proxy_remove_header_map_value(i32 map_type, i32 key_data, i32 key_size) -> i32 status
//
// Removes key (removing a pseudo-header is ignored). Status: as
// proxy_add_header_map_value.
func proxyRemoveHeaderMapValue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return changeHeader(v, mem, st, false, false)
}

func changeHeader(v *vm, mem api.Memory, st []uint64, add, replace bool) status {
	if arg(st, 0) > maxMapType {
		return statusBadArgument
	}
	key, ok := read(mem, arg(st, 1), arg(st, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	var val string
	if add || replace {
		if val, ok = readString(mem, arg(st, 3), arg(st, 4)); !ok {
			return statusInvalidMemoryAccess
		}
	}
	m, s := v.headerMap(arg(st, 0))
	if s != statusOK {
		return s
	}
	if m.keys == nil && (add || replace) && !m.isRO {
		if v.keys == nil {
			v.keys = make(map[string]string)
		}
		m.keys = v.keys
	}
	return m.change(key, val, add, replace)
}

// maxInternedKeys bounds a VM's interned header names (vm.keys): a plugin
// sets the same few names on every request; one setting names without end
// gets no more interned.
const maxInternedKeys = 256

// internKey returns ck as a string, the same string for the same name
// each time when keys is not nil: setting a header allocates its name
// once per VM, not once per call.
func internKey(keys map[string]string, ck []byte) string {
	if k, ok := keys[string(ck)]; ok { // no allocation for the lookup
		return k
	}
	k := string(ck)
	if keys != nil && len(keys) < maxInternedKeys {
		keys[k] = k
	}
	return k
}

// proxy_get_header_map_pairs(i32 map_type, i32 return_data, i32 return_size) -> i32 status
//
// Serializes the whole map (see pairs.go for the layout) into guest memory
// allocated with proxy_on_memory_allocate and stores its address and size at
// return_data and return_size. An empty map, and a map not present, store 0
// and 0 and allocate nothing (as proxy-wasm-cpp-host does).
// Status: OK; BadArgument (map type above 7); InvalidMemoryAccess.
func proxyGetHeaderMapPairs(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	if arg(st, 0) > maxMapType {
		return statusBadArgument
	}
	v.scratch = v.scratch[:0]
	if m, s := v.headerMap(arg(st, 0)); s == statusOK {
		if pairs := m.pairs(); len(pairs) > 0 {
			v.scratch = appendPairs(v.scratch, pairs)
		}
	}
	return v.writeOut(ctx, mem, v.scratch, arg(st, 1), arg(st, 2))
}

// proxy_set_header_map_pairs(i32 map_type, i32 data, i32 size) -> i32 status
//
// Replaces the whole map with the serialized map [data, +size).
// Status: OK; BadArgument (map type, map not present, read-only map);
// SerializationFailure (malformed map); InvalidMemoryAccess.
// proxy-wasm-cpp-host reads a malformed map as an empty one and so empties
// the map with Ok; a guest's serialization bug here leaves the map as it was
// instead (deliberately: it would otherwise wipe every request header, the
// gateway's included).
func proxySetHeaderMapPairs(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	if arg(st, 0) > maxMapType {
		return statusBadArgument
	}
	b, ok := read(mem, arg(st, 1), arg(st, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	m, s := v.headerMap(arg(st, 0))
	if s != statusOK {
		return s
	}
	pairs, err := decodePairs(b)
	if err != nil {
		return statusSerializationFailure
	}
	return m.setAll(pairs)
}

// proxy_get_header_map_size(i32 map_type, i32 return_size) -> i32 status
//
// Stores at return_size (u32 LE) the size of the map's serialization, as
// the ABI specifies (Envoy stores the sum of its keys' and values' lengths
// instead; no SDK we know reads it).
// Status: OK; BadArgument (map type, map not present); InvalidMemoryAccess.
func proxyGetHeaderMapSize(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	m, s := v.headerMap(arg(st, 0))
	if s != statusOK {
		return s
	}
	return putU32(mem, arg(st, 1), uint32(pairsSize(m.pairs())))
}
