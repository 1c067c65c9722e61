package wasm

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Properties. A path is its segments joined by NUL bytes ("request\0path").
// Values are encoded as Envoy does: strings raw, integers and timestamps
// (nanoseconds since the Unix epoch) as 8-byte little-endian, booleans as one
// byte, maps as serialized pairs. Known paths:
//
//	plugin_name plugin_root_id plugin_vm_id route_name cluster_name
//	request.path request.url_path request.host request.scheme request.method
//	request.headers request.id request.time request.protocol request.query
//	request.useragent request.referer
//	source.address source.port destination.address destination.port
//	connection.tls_version connection.mtls
//	response.code response.headers
//
// source/destination.address are "ip:port", as in Envoy. plugin_* are those
// of the plugin whose context (a root context or one of its streams) is
// effective. Values set with proxy_set_property are visible to
// proxy_get_property of the same stream (or of the same root context); when
// StreamInfo.Shared is set, to every plugin of the request (Envoy's filter
// state: a policy passes what it learnt, say a token's verified claims, to
// the policies after it).
// Unknown paths go to the effective plugin's PluginOptions.Properties.

// property returns the value of a property path for the effective context.
func (v *vm) property(path []string) ([]byte, bool) {
	key := strings.Join(path, ".")
	s := v.cur
	if s != nil && s.info.Shared != nil {
		if b, ok := s.info.Shared.Property(key); ok {
			return b, true
		}
	} else if s != nil {
		if b, ok := s.props[key]; ok {
			return b, true
		}
	} else if r := v.root; r != nil {
		if b, ok := r.props[key]; ok {
			return b, true
		}
	}
	o := &v.p.opts
	switch key {
	case "plugin_name":
		return []byte(o.Name), true
	case "plugin_root_id":
		return []byte(o.RootID), true
	case "plugin_vm_id":
		return []byte(o.VMID), true
	}
	if s != nil {
		if b, ok := s.property(key); ok {
			return b, true
		}
	}
	if o.Properties != nil {
		return o.Properties(path)
	}
	return nil, false
}

func (s *Stream) property(key string) ([]byte, bool) {
	in := &s.info
	r := in.Request
	switch key {
	case "route_name":
		return []byte(in.RouteName), true
	case "cluster_name":
		return []byte(in.ClusterName), true
	case "request.id":
		return []byte(in.RequestID), true
	case "source.address":
		if !in.ClientAddr.IsValid() {
			return nil, false
		}
		return []byte(in.ClientAddr.String()), true
	case "source.port":
		if !in.ClientAddr.IsValid() {
			return nil, false
		}
		return le64(int64(in.ClientAddr.Port())), true
	case "destination.address":
		if !in.LocalAddr.IsValid() {
			return nil, false
		}
		return []byte(in.LocalAddr.String()), true
	case "destination.port":
		if !in.LocalAddr.IsValid() {
			return nil, false
		}
		return le64(int64(in.LocalAddr.Port())), true
	case "connection.tls_version":
		if in.TLSVersion == "" {
			return nil, false
		}
		return []byte(in.TLSVersion), true
	case "connection.mtls":
		if r != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			return []byte{1}, true
		}
		return []byte{0}, true
	case "response.code":
		if s.status == 0 {
			return nil, false
		}
		return le64(int64(s.status)), true
	case "response.headers":
		if s.respHeaders == nil {
			return nil, false
		}
		return appendPairs(nil, headerMap{h: s.respHeaders}.pairs()), true
	}
	if r == nil {
		return nil, false
	}
	m := headerMap{req: r}
	switch key {
	case "request.path":
		return pseudoBytes(m, ":path")
	case "request.url_path":
		if r.URL == nil {
			return nil, false
		}
		return []byte(r.URL.Path), true
	case "request.query":
		if r.URL == nil {
			return nil, false
		}
		return []byte(r.URL.RawQuery), true
	case "request.host":
		return []byte(r.Host), true
	case "request.scheme":
		return pseudoBytes(m, ":scheme")
	case "request.method":
		return []byte(r.Method), true
	case "request.protocol":
		return []byte(r.Proto), true
	case "request.useragent":
		return []byte(r.UserAgent()), true
	case "request.referer":
		return []byte(r.Referer()), true
	case "request.time":
		t := in.Start
		if t.IsZero() {
			t = s.created
		}
		return le64(t.UnixNano()), true
	case "request.headers":
		h := s.reqHeaders
		if h == nil {
			h = r.Header
		}
		return appendPairs(nil, headerMap{h: h, req: r}.pairs()), true
	}
	return nil, false
}

func pseudoBytes(m headerMap, k string) ([]byte, bool) {
	v, ok := m.pseudo(k)
	return []byte(v), ok
}

// proxy_get_property(i32 path_data, i32 path_size, i32 return_data,
// i32 return_size) -> i32 status
//
// Copies the value of the property path [path_data, +path_size) into guest
// memory allocated with proxy_on_memory_allocate and stores its address and
// size (u32 LE) at return_data and return_size.
// Status: OK; NotFound; InvalidMemoryAccess.
func proxyGetProperty(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	b, ok := read(mem, arg(st, 0), arg(st, 1))
	if !ok {
		return statusInvalidMemoryAccess
	}
	path := splitPath(b)
	val, found := v.property(path)
	if !found {
		return statusNotFound
	}
	v.scratch = append(v.scratch[:0], val...)
	return v.writeOut(ctx, mem, v.scratch, arg(st, 2), arg(st, 3))
}

// proxy_set_property(i32 path_data, i32 path_size, i32 value_data,
// i32 value_size) -> i32 status
//
// Stores a value under the path for the effective stream (or the VM's root
// context); later proxy_get_property calls see it. (Envoy keeps properties
// in a request's filter state only: NotFound in a root context.)
// Status: OK; BadArgument (empty path); InvalidMemoryAccess.
func proxySetProperty(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	b, ok1 := read(mem, arg(st, 0), arg(st, 1))
	val, ok2 := read(mem, arg(st, 2), arg(st, 3))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	if len(b) == 0 {
		return statusBadArgument
	}
	key := strings.Join(splitPath(b), ".")
	var props *map[string][]byte
	if s := v.cur; s != nil && s.info.Shared != nil {
		s.info.Shared.SetProperty(key, slices.Clone(val))
		return statusOK
	} else if s != nil {
		props = &s.props
	} else if r := v.root; r != nil {
		props = &r.props
	} else { // the module's start-up function: no context yet
		return statusNotFound
	}
	if *props == nil {
		*props = map[string][]byte{}
	}
	(*props)[key] = slices.Clone(val)
	return statusOK
}

// splitPath splits a NUL-separated property path, ignoring a trailing NUL.
func splitPath(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}
