package firstparty

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestJWTVerifyArgs: an argument encodes and decodes back; malformed ones
// are refused.
func TestJWTVerifyArgs(t *testing.T) {
	good := AppendJWTVerify(nil, &JWTVerifyArgs{Alg: JWTES256, Kty: JWTKeyP256, A: []byte("xx"), B: []byte("yy"), Input: []byte("h.p"), Sig: []byte("sig")})
	tests := []struct {
		name string
		in   []byte
		want *JWTVerifyArgs // nil: an error
	}{
		{"round trip", good, &JWTVerifyArgs{Alg: JWTES256, Kty: JWTKeyP256, A: []byte("xx"), B: []byte("yy"), Input: []byte("h.p"), Sig: []byte("sig")}},
		{"empty fields", AppendJWTVerify(nil, &JWTVerifyArgs{Alg: JWTHS256, Kty: JWTKeyOct}), &JWTVerifyArgs{Alg: JWTHS256, Kty: JWTKeyOct, A: []byte{}, B: []byte{}, Input: []byte{}, Sig: []byte{}}},
		{"nothing", nil, nil},
		{"version 2", append([]byte{2}, good[1:]...), nil},
		{"truncated", good[:len(good)-1], nil},
		{"trailing byte", append(append([]byte(nil), good...), 0), nil},
		{"length past the end", []byte{1, 1, 1, 0xff, 0x01}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeJWTVerify(tc.in)
			if tc.want == nil {
				if !errors.Is(err, ErrJWTVerifyArgs) {
					t.Fatalf("decoded %+v, %v; want ErrJWTVerifyArgs", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, *tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, *tc.want)
			}
		})
	}
	if len(JWTAlgorithms) != int(JWTHS256) || JWTAlgorithms[JWTES256-1] != "ES256" {
		t.Errorf("JWTAlgorithms %v do not follow the codes", JWTAlgorithms)
	}
}

// TestRateLimitTake: arguments and results encode and decode back;
// malformed ones are refused, naming the field.
func TestRateLimitTake(t *testing.T) {
	arg := AppendRateLimitTake(nil, &RateLimitTakeArgs{Rate: 100000, Burst: 200, Cost: 1, Key: []byte("h:k")})
	tests := []struct {
		name  string
		in    []byte
		want  *RateLimitTakeArgs
		field string // of the error
	}{
		{"round trip", arg, &RateLimitTakeArgs{Rate: 100000, Burst: 200, Cost: 1, Key: []byte("h:k")}, ""},
		{"nothing", nil, nil, "version"},
		{"version 2", append([]byte{2}, arg[1:]...), nil, "version"},
		{"no cost", arg[:6], nil, "cost"}, // version, rate (3 bytes), burst (2)
		{"unterminated varint", []byte{1, 0x80}, nil, "rate"},
		{"varint overflow", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), nil, "rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRateLimitTake(tc.in)
			if tc.want == nil {
				if !errors.Is(err, ErrRateLimitTake) || err.Error() != ErrRateLimitTake.Error()+": "+tc.field {
					t.Fatalf("decoded %+v, %v; want an error on %s", got, err, tc.field)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, *tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, *tc.want)
			}
		})
	}
	for _, r := range []RateLimitTakeResult{
		{Allowed: true, Remaining: 199, Reset: 10},
		{Overflow: true, RetryAfter: 1 << 40, Reset: 1 << 50},
		{},
	} {
		got, err := DecodeRateLimitTakeResult(AppendRateLimitTakeResult(nil, &r))
		if err != nil || got != r {
			t.Errorf("result %+v came back as %+v, %v", r, got, err)
		}
	}
	if _, err := DecodeRateLimitTakeResult([]byte{RateLimitAllowed, 1, 2}); !errors.Is(err, ErrRateLimitTakeResult) || err.Error() != "ratelimit: malformed result: reset" {
		t.Errorf("a result without reset: %v", err)
	}
}

// FuzzDecodeJWTVerify: the decoder never panics, and what it accepts
// encodes back to the same bytes.
func FuzzDecodeJWTVerify(f *testing.F) {
	f.Add(AppendJWTVerify(nil, &JWTVerifyArgs{Alg: JWTRS256, Kty: JWTKeyRSA, A: []byte{1, 2}, B: []byte{1, 0, 1}, Input: []byte("a.b"), Sig: []byte{9}}))
	f.Add([]byte{1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeJWTVerify(b)
		if err != nil {
			return
		}
		if again := AppendJWTVerify(nil, &a); len(again) > len(b) {
			t.Fatalf("%x decoded to %+v, which encodes longer: %x", b, a, again)
		}
	})
}

// FuzzDecodeRateLimitTake: the decoders of arguments and results never
// panic; an accepted argument encodes back to one that decodes the same.
func FuzzDecodeRateLimitTake(f *testing.F) {
	f.Add(AppendRateLimitTake(nil, &RateLimitTakeArgs{Rate: 1, Burst: 2, Cost: 1, Key: []byte("k")}))
	f.Add(AppendRateLimitTakeResult(nil, &RateLimitTakeResult{Allowed: true, Remaining: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeRateLimitTakeResult(b)
		a, err := DecodeRateLimitTake(b)
		if err != nil {
			return
		}
		again, err := DecodeRateLimitTake(AppendRateLimitTake(nil, &a))
		if err != nil || !reflect.DeepEqual(again, a) && !(len(a.Key) == 0 && len(again.Key) == 0) {
			t.Fatalf("%x: %+v came back as %+v, %v", b, a, again, err)
		}
	})
}

// TestJWTDigestArgs: the token digest's argument encodes and decodes back;
// malformed ones are refused.
func TestJWTDigestArgs(t *testing.T) {
	hdr, ok := AppendJWTDigestHeader(nil, "authorization", "Bearer ")
	if !ok {
		t.Fatal("not encoded")
	}
	if _, ok := AppendJWTDigestHeader(nil, string(make([]byte, 256)), ""); ok {
		t.Error("a 256-byte name encoded")
	}
	tests := []struct {
		name       string
		in         []byte
		mode       byte // 0: an error
		hname, rst string
	}{
		{"header", hdr, JWTDigestHeader, "authorization", "Bearer "},
		{"header, no prefix", []byte{JWTDigestHeader, 1, 'x'}, JWTDigestHeader, "x", ""},
		{"bytes", []byte{JWTDigestBytes, 'a', '.', 'b'}, JWTDigestBytes, "", "a.b"},
		{"nothing", nil, 0, "", ""},
		{"unknown mode", []byte{3, 'x'}, 0, "", ""},
		{"empty name", []byte{JWTDigestHeader, 0}, 0, "", ""},
		{"no length", []byte{JWTDigestHeader}, 0, "", ""},
		{"name past the end", []byte{JWTDigestHeader, 5, 'x'}, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode, name, rest, err := DecodeJWTDigest(tc.in)
			if tc.mode == 0 {
				if err == nil {
					t.Fatalf("accepted: %d %q %q", mode, name, rest)
				}
				return
			}
			if err != nil || mode != tc.mode || string(name) != tc.hname || string(rest) != tc.rst {
				t.Fatalf("%d %q %q %v", mode, name, rest, err)
			}
		})
	}
}
