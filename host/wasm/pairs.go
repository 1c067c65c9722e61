package wasm

import (
	"encoding/binary"
	"errors"
)

// Serialized maps (spec "Maps with HTTP fields and/or gRPC metadata"):
//
//	[u32 LE n]
//	[u32 LE len(key0)][u32 LE len(value0)] … n pairs of lengths
//	key0 0x00 value0 0x00 … n pairs of NUL-terminated bytes
//
// An empty map is either zero bytes or, as some SDKs send it, a single 0x00
// byte or a count of zero.

var errBadPairs = errors.New("malformed serialized map")

// pairsSize returns the serialized size of pairs.
func pairsSize(pairs [][2]string) int {
	n := 4
	for _, p := range pairs {
		n += 8 + len(p[0]) + len(p[1]) + 2
	}
	return n
}

// appendPairs appends the serialization of pairs to dst.
func appendPairs(dst []byte, pairs [][2]string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(pairs)))
	for _, p := range pairs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[0])))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[1])))
	}
	for _, p := range pairs {
		dst = append(dst, p[0]...)
		dst = append(dst, 0)
		dst = append(dst, p[1]...)
		dst = append(dst, 0)
	}
	return dst
}

// decodePairs parses a serialized map. It never reads outside b and never
// allocates more than len(b) suggests.
func decodePairs(b []byte) ([][2]string, error) {
	if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, errBadPairs
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n == 0 {
		return nil, nil
	}
	// Each pair takes at least 8 bytes of lengths and 2 NULs.
	if n*10+4 > uint64(len(b)) {
		return nil, errBadPairs
	}
	sizes := b[4 : 4+n*8]
	data := b[4+n*8:]
	out := make([][2]string, n)
	for i := range out {
		kl := uint64(binary.LittleEndian.Uint32(sizes[i*8:]))
		vl := uint64(binary.LittleEndian.Uint32(sizes[i*8+4:]))
		if kl+vl+2 > uint64(len(data)) || data[kl] != 0 || data[kl+1+vl] != 0 {
			return nil, errBadPairs
		}
		out[i] = [2]string{string(data[:kl]), string(data[kl+1 : kl+1+vl])}
		data = data[kl+vl+2:]
	}
	return out, nil
}
