package main

import (
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets, like an HDR
// histogram with 2 significant digits: values below 128 ns are exact, and
// every power-of-two range above is split into 64 buckets, so a percentile
// is off by at most 1/64 (1.6 %). It is a fixed-size array: recording
// allocates nothing and needs no lock (each load goroutine has its own;
// merge them at the end).
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
}

const (
	histSub     = 128 // exact values below this; 64 buckets per doubling above
	histHalf    = histSub / 2
	histBuckets = histSub + (63-7)*histHalf + histHalf // up to 2^63 ns
)

// bucketOf returns the bucket of v ≥ 0.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // v>>shift is in [64, 128)
	return histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	shift := (i-histSub)/histHalf + 1
	top := uint64((i-histSub)%histHalf + histHalf)
	return top << shift, 1 << shift
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// percentile returns the value below which q (0–1) of the recorded values
// lie: the middle of the bucket holding the ⌈q·total⌉-th value. It returns
// 0 for an empty histogram.
func (h *histogram) percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999)
	rank = max(1, min(rank, h.total))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, width := bucketRange(i)
			return time.Duration(lo + (width-1)/2)
		}
	}
	return 0 // unreachable: the counts sum to total
}
