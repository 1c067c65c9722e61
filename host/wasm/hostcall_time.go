package wasm

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// proxy_get_current_time_nanoseconds(i32 return_time) -> i32 status
//
// Stores the wall-clock time in nanoseconds since the Unix epoch at
// return_time (u64 LE). Status: OK; InvalidMemoryAccess.
func proxyGetCurrentTimeNanoseconds(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return putU64(mem, arg(st, 0), uint64(time.Now().UnixNano()))
}

// proxy_set_tick_period_milliseconds(i32 period) -> i32 status
//
// Calls proxy_on_tick(root) every period milliseconds, where root is the
// root context of the effective context (as in Envoy, each root context of a
// shared VM has its own period); 0 stops the ticks. Ticks stop when the root
// context is deleted or the VM closes. Status: OK; NotFound (no context yet,
// in the module's start-up function).
func proxySetTickPeriodMilliseconds(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	r := v.root
	if r == nil {
		return statusNotFound
	}
	r.tick = time.Duration(arg(st, 0)) * time.Millisecond
	v.ticksChanged()
	return statusOK
}
