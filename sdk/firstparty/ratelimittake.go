package firstparty

import (
	"encoding/binary"
	"errors"
)

// RateLimitTake's argument and result (the host implements it in
// host/policy/firstparty_ratelimit.go, which documents the ranges it
// accepts; plugins/ratelimit calls it). Every integer is an unsigned
// LEB128 varint.
//
//	argument: byte version (1), uvarint rate (thousandths of a token per
//	          second), uvarint burst (tokens), uvarint cost (tokens), then
//	          the bucket's key (the rest, any length)
//	result:   byte flags (RateLimitAllowed, RateLimitOverflow), uvarint
//	          remaining (whole tokens), uvarint retry after (ms), uvarint
//	          reset (ms)

// RateLimitTakeVersion is the argument's first byte.
const RateLimitTakeVersion = 1

// Flags of RateLimitTake's result.
const (
	// RateLimitAllowed: the tokens were taken.
	RateLimitAllowed byte = 1
	// RateLimitOverflow: the caller's table of buckets was full; the key
	// shares the overflow bucket.
	RateLimitOverflow byte = 2
)

// RateLimitTakeArgs is RateLimitTake's argument.
type RateLimitTakeArgs struct {
	Rate  uint64 // milli-tokens per second
	Burst uint64 // tokens
	Cost  uint64 // tokens
	Key   []byte
}

// AppendRateLimitTake appends the encoded argument to dst.
func AppendRateLimitTake(dst []byte, a *RateLimitTakeArgs) []byte {
	dst = append(dst, RateLimitTakeVersion)
	dst = binary.AppendUvarint(dst, a.Rate)
	dst = binary.AppendUvarint(dst, a.Burst)
	dst = binary.AppendUvarint(dst, a.Cost)
	return append(dst, a.Key...)
}

// ErrRateLimitTake is a malformed RateLimitTake argument;
// ErrRateLimitTakeResult a malformed result.
var (
	ErrRateLimitTake       = errors.New("ratelimit: malformed arguments")
	ErrRateLimitTakeResult = errors.New("ratelimit: malformed result")
)

// DecodeRateLimitTake decodes an argument; Key aliases b. It never
// panics; it checks the structure only, not the ranges. The error names
// the field that is malformed.
func DecodeRateLimitTake(b []byte) (RateLimitTakeArgs, error) {
	var a RateLimitTakeArgs
	if len(b) < 1 || b[0] != RateLimitTakeVersion {
		return a, &takeError{ErrRateLimitTake, "version"}
	}
	b = b[1:]
	var field string
	if a.Rate, b, field = uvarint(b, "rate"); field == "" {
		if a.Burst, b, field = uvarint(b, "burst"); field == "" {
			a.Cost, b, field = uvarint(b, "cost")
		}
	}
	if field != "" {
		return a, &takeError{ErrRateLimitTake, field}
	}
	a.Key = b
	return a, nil
}

// uvarint decodes the varint at the start of b and returns the rest of b;
// field is name when b does not start with a valid varint, "" otherwise.
// (Straight-line decoding, no table of fields: a plugin decodes a result
// on every request, and a TinyGo guest pays for every allocation.)
func uvarint(b []byte, name string) (v uint64, rest []byte, field string) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, name
	}
	return v, b[n:], ""
}

// takeError is ErrRateLimitTake or ErrRateLimitTakeResult naming a field.
type takeError struct {
	err   error
	field string
}

func (e *takeError) Error() string { return e.err.Error() + ": " + e.field }
func (e *takeError) Unwrap() error { return e.err }

// RateLimitTakeResult is what RateLimitTake answers.
type RateLimitTakeResult struct {
	Allowed, Overflow bool
	Remaining         uint64 // whole tokens
	RetryAfter        uint64 // milliseconds until cost tokens are there (0 if allowed)
	Reset             uint64 // milliseconds until the bucket is full again
}

// AppendRateLimitTakeResult appends the encoded result to dst.
func AppendRateLimitTakeResult(dst []byte, r *RateLimitTakeResult) []byte {
	var flags byte
	if r.Allowed {
		flags |= RateLimitAllowed
	}
	if r.Overflow {
		flags |= RateLimitOverflow
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, r.Remaining)
	dst = binary.AppendUvarint(dst, r.RetryAfter)
	return binary.AppendUvarint(dst, r.Reset)
}

// DecodeRateLimitTakeResult decodes a result. It never panics.
func DecodeRateLimitTakeResult(b []byte) (RateLimitTakeResult, error) {
	var r RateLimitTakeResult
	if len(b) < 1 {
		return r, &takeError{ErrRateLimitTakeResult, "flags"}
	}
	r.Allowed, r.Overflow = b[0]&RateLimitAllowed != 0, b[0]&RateLimitOverflow != 0
	b = b[1:]
	var field string
	if r.Remaining, b, field = uvarint(b, "remaining"); field == "" {
		if r.RetryAfter, b, field = uvarint(b, "retry after"); field == "" {
			r.Reset, _, field = uvarint(b, "reset")
		}
	}
	if field != "" {
		return r, &takeError{ErrRateLimitTakeResult, field}
	}
	return r, nil
}
