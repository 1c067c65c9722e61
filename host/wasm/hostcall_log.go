package wasm

import (
	"context"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// proxy_log(i32 level, i32 message_data, i32 message_size) -> i32 status
//
// Logs message [message_data, +message_size) at level (proxy_log_level_t:
// trace 0 … critical 5) through the Runtime's logger, tagged with the name
// of the plugin whose context is effective. Trace maps to slog debug-4, critical to error+4.
// Status: OK; InvalidMemoryAccess for a bad range.
func proxyLog(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	level := slogLevel(arg(st, 0))
	h := v.p.log.Handler() // the plugin of the effective context
	if !h.Enabled(ctx, level) {
		return statusOK
	}
	msg, ok := readString(mem, arg(st, 1), arg(st, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	// The handler directly, as slog.Logger.Log would call it, but with no
	// caller PC: the source line of a host function says nothing about the
	// plugin, and runtime.Callers was a tenth of a logging callback's cost.
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(slog.Any("context_id", v.effective))
	_ = h.Handle(ctx, r)
	return statusOK
}

// proxy_get_log_level(i32 return_log_level) -> i32 status
//
// Stores at return_log_level (u32 LE) the lowest proxy_log_level_t the logger
// records. Status: OK; InvalidMemoryAccess.
func proxyGetLogLevel(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	lvl := uint32(logCritical)
	for l := uint32(logTrace); l <= logCritical; l++ {
		if v.p.log.Enabled(ctx, slogLevel(l)) {
			lvl = l
			break
		}
	}
	return putU32(mem, arg(st, 0), lvl)
}

func slogLevel(l uint32) slog.Level {
	switch l {
	case logTrace:
		return slog.LevelDebug - 4
	case logDebug:
		return slog.LevelDebug
	case logInfo:
		return slog.LevelInfo
	case logWarn:
		return slog.LevelWarn
	case logError:
		return slog.LevelError
	default:
		return slog.LevelError + 4
	}
}
