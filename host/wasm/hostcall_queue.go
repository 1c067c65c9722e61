package wasm

import (
	"context"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// queues are the shared queues, in the Runtime, named by (vm_id, name). The
// root context that registered a queue last (the root context of the
// effective context) is its owner: proxy_on_queue_ready(root, queue_id) is
// delivered to that plugin's root context on that VM, asynchronously, after
// each enqueue. If the owner VM is gone, another live VM of the plugin's group
// delivers it to the plugin's root context there (every new VM re-runs
// proxy_on_configure, where plugins register).
type queues struct {
	mu     sync.Mutex
	next   uint32
	byName map[[2]string]uint32
	byID   map[uint32]*queue
}

type queue struct {
	items [][]byte
	owner *vm
	plug  *Plugin
}

// maxQueueItems bounds a queue; enqueue past it returns InternalFailure.
const maxQueueItems = 10000

func (q *queues) init() {
	q.byName = map[[2]string]uint32{}
	q.byID = map[uint32]*queue{}
}

func (q *queues) register(v *vm, name string) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := [2]string{v.p.opts.VMID, name}
	id, ok := q.byName[key]
	if !ok {
		q.next++
		id = q.next
		q.byName[key] = id
		q.byID[id] = &queue{}
	}
	q.byID[id].owner, q.byID[id].plug = v, v.p
	return id
}

func (q *queues) resolve(vmID, name string) (uint32, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id, ok := q.byName[[2]string{vmID, name}]
	return id, ok
}

func (q *queues) enqueue(id uint32, data []byte) status {
	q.mu.Lock()
	e := q.byID[id]
	if e == nil {
		q.mu.Unlock()
		return statusNotFound
	}
	if len(e.items) >= maxQueueItems {
		q.mu.Unlock()
		return statusInternalFailure
	}
	e.items = append(e.items, slices.Clone(data))
	owner, plug := e.owner, e.plug
	q.mu.Unlock()
	if owner == nil || owner.closed.Load() {
		owner = nil
		if plug != nil {
			plug.g.mu.Lock()
			for _, v := range plug.g.vms {
				if !v.closed.Load() {
					owner = v
					break
				}
			}
			plug.g.mu.Unlock()
		}
	}
	if owner != nil {
		owner.post(plug, func(r *rootCtx) { _, _ = owner.call(owner.fn.queueReady, uint64(r.id), uint64(id)) })
	}
	return statusOK
}

func (q *queues) dequeue(id uint32) ([]byte, status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.byID[id]
	if e == nil {
		return nil, statusNotFound
	}
	if len(e.items) == 0 {
		return nil, statusEmpty
	}
	item := e.items[0]
	e.items[0] = nil
	e.items = e.items[1:]
	return item, statusOK
}

// dropVM forgets v as a queue owner.
func (q *queues) dropVM(v *vm) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.byID {
		if e.owner == v {
			e.owner = nil
		}
	}
}

// dropOwner forgets a closed plugin as a queue owner; the queues and their
// items stay.
func (q *queues) dropOwner(p *Plugin) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.byID {
		if e.plug == p {
			e.plug, e.owner = nil, nil
		}
	}
}

// proxy_register_shared_queue(i32 name_data, i32 name_size, i32 return_queue_id) -> i32 status
//
// Registers (or re-registers) the queue name under this plugin's vm_id, makes
// the effective plugin's root context on this VM its owner, and stores its id
// (u32 LE) at return_queue_id.
// Status: OK; InvalidMemoryAccess.
func proxyRegisterSharedQueue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	name, ok := readString(mem, arg(st, 0), arg(st, 1))
	if !ok || !writable(mem, arg(st, 2), 4) {
		return statusInvalidMemoryAccess
	}
	return putU32(mem, arg(st, 2), v.p.rt.queues.register(v, name))
}

// proxy_resolve_shared_queue(i32 vm_id_data, i32 vm_id_size, i32 name_data,
// i32 name_size, i32 return_queue_id) -> i32 status
//
// Stores the id (u32 LE) of the queue (vm_id, name) at return_queue_id.
// Status: OK; NotFound; InvalidMemoryAccess.
func proxyResolveSharedQueue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	vmID, ok1 := readString(mem, arg(st, 0), arg(st, 1))
	name, ok2 := readString(mem, arg(st, 2), arg(st, 3))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	id, found := v.p.rt.queues.resolve(vmID, name)
	if !found {
		return statusNotFound
	}
	return putU32(mem, arg(st, 4), id)
}

// proxy_enqueue_shared_queue(i32 queue_id, i32 value_data, i32 value_size) -> i32 status
//
// Appends a copy of the value and schedules proxy_on_queue_ready on the
// owner. Status: OK; NotFound; InternalFailure (queue full);
// InvalidMemoryAccess.
func proxyEnqueueSharedQueue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	val, ok := read(mem, arg(st, 1), arg(st, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	return v.p.rt.queues.enqueue(arg(st, 0), val)
}

// proxy_dequeue_shared_queue(i32 queue_id, i32 return_value_data,
// i32 return_value_size) -> i32 status
//
// Removes the oldest item, copies it into guest memory allocated with
// proxy_on_memory_allocate and stores its address and size (u32 LE).
// Status: OK; NotFound; Empty; InvalidMemoryAccess.
func proxyDequeueSharedQueue(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	if !writable(mem, arg(st, 1), 4) || !writable(mem, arg(st, 2), 4) {
		return statusInvalidMemoryAccess
	}
	item, s := v.p.rt.queues.dequeue(arg(st, 0))
	if s != statusOK {
		return s
	}
	return v.writeOut(ctx, mem, item, arg(st, 1), arg(st, 2))
}
