package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogramPercentiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(record func(time.Duration))
		q      float64
		want   time.Duration
	}{
		{
			name:   "empty",
			values: func(func(time.Duration)) {},
			q:      0.5, want: 0,
		},
		{
			name:   "one value",
			values: func(r func(time.Duration)) { r(1234 * time.Microsecond) },
			q:      0.99, want: 1234 * time.Microsecond,
		},
		{
			name: "1..10000µs p50",
			values: func(r func(time.Duration)) {
				for i := 1; i <= 10000; i++ {
					r(time.Duration(i) * time.Microsecond)
				}
			},
			q: 0.50, want: 5000 * time.Microsecond,
		},
		{
			name: "1..10000µs p99",
			values: func(r func(time.Duration)) {
				for i := 1; i <= 10000; i++ {
					r(time.Duration(i) * time.Microsecond)
				}
			},
			q: 0.99, want: 9900 * time.Microsecond,
		},
		{
			name: "tail of 1% slow",
			values: func(r func(time.Duration)) {
				for range 990 {
					r(300 * time.Microsecond)
				}
				for range 10 {
					r(2 * time.Second)
				}
			},
			q: 0.99, want: 300 * time.Microsecond, // the 990th value
		},
		{
			name: "p100 is the slowest",
			values: func(r func(time.Duration)) {
				r(time.Millisecond)
				r(3 * time.Second)
			},
			q: 1, want: 3 * time.Second,
		},
		{
			name:   "exact below 128ns",
			values: func(r func(time.Duration)) { r(77) },
			q:      0.5, want: 77,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Record into two histograms and merge, as the load workers do.
			var a, b, all histogram
			n := 0
			tt.values(func(d time.Duration) {
				if n%2 == 0 {
					a.record(d)
				} else {
					b.record(d)
				}
				n++
			})
			all.merge(&a)
			all.merge(&b)
			got := all.percentile(tt.q)
			if math.Abs(float64(got-tt.want)) > float64(tt.want)/64 {
				t.Errorf("percentile(%v) = %v, want %v ± 1/64", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lies in its bucket, buckets are contiguous, and the
	// largest duration has a bucket.
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, math.MaxInt64} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		lo, width := bucketRange(i)
		if v < lo || v-lo >= width {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, lo, lo+width)
		}
		if width > 1 && float64(width)/float64(lo) > 1.0/64+1e-9 {
			t.Errorf("bucket %d = [%d, +%d) wider than 1/64", i, lo, width)
		}
	}
	for i := 1; i < histBuckets; i++ {
		plo, pw := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if plo+pw != lo {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, plo+pw)
		}
	}
}
