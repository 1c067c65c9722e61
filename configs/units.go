package configs

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string with a unit:
// "10s", "86400s", "1m30s", "250ms". A bare number is an error: "10" could
// mean seconds or milliseconds, and a gateway should not guess.
type Duration struct{ time.Duration }

// ParseDuration parses a duration as the YAML holds it.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Duration{}, fmt.Errorf("empty duration")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return Duration{}, fmt.Errorf("duration %q has no unit (write %ss or %sms)", s, s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q (want a number and a unit: 500ms, 10s, 5m, 1h)", s)
	}
	if d < 0 {
		return Duration{}, fmt.Errorf("negative duration %q", s)
	}
	return Duration{d}, nil
}

// MarshalJSON writes the canonical form, "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// D returns the duration of a possibly nil *Duration, or def.
func (d *Duration) D(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

// Size is a byte count written as a plain integer (10485760), a string of
// one ("1024"), or with a Kubernetes quantity suffix: Ki, Mi, Gi, Ti
// (powers of 1024) or k, M, G, T (powers of 1000).
type Size struct{ Bytes int64 }

var sizeSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// ParseSize parses a size as the YAML holds it.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Size{}, fmt.Errorf("empty size")
	}
	num, mult := s, int64(1)
	for _, sf := range sizeSuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			num, mult = strings.TrimSuffix(s, sf.suffix), sf.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return Size{}, fmt.Errorf("invalid size %q (want bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T: 1Mi, 256Mi, 1048576)", s)
	}
	if n < 0 {
		return Size{}, fmt.Errorf("negative size %q", s)
	}
	if n > math.MaxInt64/mult {
		return Size{}, fmt.Errorf("size %q is too large", s)
	}
	return Size{n * mult}, nil
}

// MarshalJSON writes the size as a plain byte count.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.Bytes) }

// B returns the byte count of a possibly nil *Size, or def.
func (s *Size) B(def int64) int64 {
	if s == nil {
		return def
	}
	return s.Bytes
}

// UnmarshalJSON reads the canonical form back ("1m30s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"10s\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalJSON reads a byte count, or a string ParseSize accepts.
func (s *Size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 {
			return fmt.Errorf("negative size %d", n)
		}
		*s = Size{n}
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("size: want a byte count or a string such as \"1Mi\"")
	}
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
