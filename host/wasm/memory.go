package wasm

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Guest memory access. Every guest pointer and length is bounds-checked by
// api.Memory; a failed check makes the host function return
// InvalidMemoryAccess (6) instead of touching host memory.

// maxGuestInput bounds any single byte range a host function reads from the
// guest (keys, values, bodies, serialized maps).
const maxGuestInput = 64 << 20

// read returns a view of guest memory [ptr, ptr+size). The view is valid
// until the guest runs again; copy it to keep it.
func read(mem api.Memory, ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	if size > maxGuestInput {
		return nil, false
	}
	return mem.Read(ptr, size)
}

// readString copies guest memory [ptr, ptr+size) into a string.
func readString(mem api.Memory, ptr, size uint32) (string, bool) {
	b, ok := read(mem, ptr, size)
	return string(b), ok
}

// writable reports whether the guest range [ptr, ptr+size) exists.
func writable(mem api.Memory, ptr, size uint32) bool {
	return uint64(ptr)+uint64(size) <= uint64(mem.Size())
}

// allocate reserves size bytes in the guest through proxy_on_memory_allocate
// (or malloc) and returns the guest pointer. A trap in the allocator aborts
// the whole callback (the host function panics with the error, which wazero
// returns from the outer call) because the guest state is then undefined.
func (v *vm) allocate(ctx context.Context, size uint32) uint32 {
	v.allocStack[0] = uint64(size)
	if err := v.fnMalloc.CallWithStack(ctx, v.allocStack[:]); err != nil {
		panic(fmt.Errorf("proxy_on_memory_allocate(%d): %w", size, err))
	}
	return api.DecodeU32(v.allocStack[0])
}

// writeOut copies data into freshly allocated guest memory and stores its
// address and length at the guest addresses retPtr and retSize:
//
//	retPtr:  [u32 LE address of the copy]
//	retSize: [u32 LE len(data)]
//
// An empty data stores address 0 and size 0 without allocating. The return
// slots are checked before the guest allocator runs.
func (v *vm) writeOut(ctx context.Context, mem api.Memory, data []byte, retPtr, retSize uint32) status {
	if !writable(mem, retPtr, 4) || !writable(mem, retSize, 4) {
		return statusInvalidMemoryAccess
	}
	if len(data) > maxGuestInput {
		return statusInternalFailure
	}
	var p uint32
	if len(data) > 0 {
		p = v.allocate(ctx, uint32(len(data)))
		// The allocator may have grown memory: write through the module's
		// current memory.
		if p == 0 || !mem.Write(p, data) {
			return statusInvalidMemoryAccess
		}
	}
	mem.WriteUint32Le(retPtr, p)
	mem.WriteUint32Le(retSize, uint32(len(data)))
	return statusOK
}

// putU32 stores v at guest address ptr (little endian).
func putU32(mem api.Memory, ptr, v uint32) status {
	if !mem.WriteUint32Le(ptr, v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// putU64 stores v at guest address ptr (little endian).
func putU64(mem api.Memory, ptr uint32, v uint64) status {
	if !mem.WriteUint64Le(ptr, v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// le64 encodes an integer property value as Envoy does: 8 bytes, little
// endian.
func le64(v int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}
