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
// Calls proxy_on_tick(root context) of this VM every period milliseconds;
// 0 stops the ticks. Ticks stop when the VM closes. Status: OK.
func proxySetTickPeriodMilliseconds(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	d := time.Duration(arg(st, 0)) * time.Millisecond
	for {
		select {
		case v.tickCh <- d:
			return statusOK
		default:
			select { // replace a pending, unread period
			case <-v.tickCh:
			default:
			}
		}
	}
}
