package wasm

import (
	"context"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// sharedData is the key-value store behind proxy_{get,set}_shared_data. It
// lives in the Runtime, shared by every VM, scoped by vm_id as in Envoy.
type sharedData struct {
	mu      sync.Mutex
	nextCAS uint32
	m       map[string]map[string]*sharedEntry // vm_id → key → entry
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func (d *sharedData) init() { d.m = map[string]map[string]*sharedEntry{} }

// reset forgets the data of vmID.
func (d *sharedData) reset(vmID string) {
	d.mu.Lock()
	delete(d.m, vmID)
	d.mu.Unlock()
}

func (d *sharedData) get(vmID, key string) ([]byte, uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.m[vmID][key]
	if e == nil {
		return nil, 0, false
	}
	return e.value, e.cas, true
}

// set stores value if cas is 0 or matches the current entry's cas.
func (d *sharedData) set(vmID, key string, value []byte, cas uint32) status {
	d.mu.Lock()
	defer d.mu.Unlock()
	kv := d.m[vmID]
	if kv == nil {
		kv = map[string]*sharedEntry{}
		d.m[vmID] = kv
	}
	e := kv[key]
	if cas != 0 && (e == nil || e.cas != cas) {
		return statusCASMismatch
	}
	d.nextCAS++
	if d.nextCAS == 0 {
		d.nextCAS = 1
	}
	kv[key] = &sharedEntry{value: slices.Clone(value), cas: d.nextCAS}
	return statusOK
}

// proxy_get_shared_data(i32 key_data, i32 key_size, i32 return_value_data,
// i32 return_value_size, i32 return_cas) -> i32 status
//
// Copies the value of key into guest memory allocated with
// proxy_on_memory_allocate, stores its address and size (u32 LE) at
// return_value_data and return_value_size and its CAS token (u32 LE) at
// return_cas. Status: OK; NotFound; InvalidMemoryAccess.
func proxyGetSharedData(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	key, ok := readString(mem, arg(st, 0), arg(st, 1))
	if !ok || !writable(mem, arg(st, 4), 4) {
		return statusInvalidMemoryAccess
	}
	val, cas, found := v.p.rt.shared.get(v.p.opts.VMID, key)
	if !found {
		return statusNotFound
	}
	if s := v.writeOut(ctx, mem, val, arg(st, 2), arg(st, 3)); s != statusOK {
		return s
	}
	return putU32(mem, arg(st, 4), cas)
}

// proxy_set_shared_data(i32 key_data, i32 key_size, i32 value_data,
// i32 value_size, i32 cas) -> i32 status
//
// Stores the value under key. A non-zero cas must equal the entry's current
// token (from proxy_get_shared_data); 0 stores unconditionally.
// Status: OK; CasMismatch; InvalidMemoryAccess.
func proxySetSharedData(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	key, ok1 := readString(mem, arg(st, 0), arg(st, 1))
	val, ok2 := read(mem, arg(st, 2), arg(st, 3))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return v.p.rt.shared.set(v.p.opts.VMID, key, val, arg(st, 4))
}
