package sdk

import (
	"errors"
	"strconv"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// CallHost calls a function the NovaEdge host provides (a proxy-wasm
// foreign function): fast primitives that live outside the VM, such as the
// token buckets of the rate limiter, which every VM of a plugin shares.
func CallHost(name string, arg []byte) ([]byte, error) {
	return proxywasm.CallForeignFunction(name, arg)
}

// CallResponse is the answer to an HTTP callout.
type CallResponse struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

// Header returns the value of the named header of the callout's answer.
func (c *CallResponse) Header(name string) string {
	for _, h := range c.Headers {
		if equalFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// HTTPCall sends a request to upstream — a ProxyBackend's name
// ("namespace/name" or "name") or a URL — and calls done with the answer,
// or with an error if there is none within timeoutMillis. headers must
// hold ":method" and ":path" (and may hold ":authority"). done runs in the
// context of the request that made the call: it may call Request.Resume,
// Request.Deny or Request.Respond.
func HTTPCall(upstream string, headers [][2]string, body []byte, timeoutMillis uint32, done func(*CallResponse, error)) error {
	caller := active // the stream's context, kept from reuse (httpContext.called)
	if caller != nil {
		caller.called = true
	}
	_, err := proxywasm.DispatchHttpCall(upstream, headers, body, nil, timeoutMillis, func(numHeaders, bodySize, numTrailers int) {
		prev := active
		active = caller // a callout made from done belongs to the stream too
		defer func() { active = prev }()
		hs, err := proxywasm.GetHttpCallResponseHeaders()
		if err != nil {
			done(nil, errors.New("callout failed (timeout or no upstream)"))
			return
		}
		resp := &CallResponse{Headers: hs}
		for _, h := range hs {
			if h[0] == ":status" {
				resp.Status, _ = strconv.Atoi(h[1])
			}
		}
		if bodySize > 0 {
			resp.Body, err = proxywasm.GetHttpCallResponseBody(0, bodySize)
			if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
				done(nil, err)
				return
			}
		}
		done(resp, nil)
	})
	return err
}

// Shared data: key/value pairs that every VM of every plugin with the same
// vm_id sees, kept by the host (they survive a VM's restart). Version-
// checked writes (compare-and-swap) let VMs update them safely.

// ErrConflict is returned by SetShared when the value changed since it
// was read.
var ErrConflict = errors.New("shared data changed since it was read")

// GetShared returns a shared value and its version (0 and nil if absent).
func GetShared(key string) ([]byte, uint32) {
	v, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		return nil, 0
	}
	return v, cas
}

// SetShared writes a shared value if its version is still cas (0: write
// whatever the version), or returns ErrConflict.
func SetShared(key string, value []byte, cas uint32) error {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return ErrConflict
	}
	return err
}

// AddShared adds delta to the shared counter key (a decimal value; absent
// is 0) and returns the new value. Concurrent adds from any VM are not
// lost: it retries on a version conflict.
func AddShared(key string, delta int64) (int64, error) {
	for attempt := 0; attempt < 64; attempt++ {
		v, cas := GetShared(key)
		n := int64(0)
		if len(v) > 0 {
			var err error
			if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return 0, errors.New("shared counter " + key + ": not a number")
			}
		}
		n += delta
		err := SetShared(key, []byte(strconv.FormatInt(n, 10)), cas)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
	}
	return 0, ErrConflict
}

// Logging, to the gateway's log with the policy's name.

func Debugf(format string, args ...any) { proxywasm.LogDebugf(format, args...) }
func Infof(format string, args ...any)  { proxywasm.LogInfof(format, args...) }
func Warnf(format string, args ...any)  { proxywasm.LogWarnf(format, args...) }
func Errorf(format string, args ...any) { proxywasm.LogErrorf(format, args...) }

// equalFold is strings.EqualFold for ASCII header names.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
