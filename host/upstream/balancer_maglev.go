package upstream

import (
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// maglevSize is the Maglev lookup table size: a prime, much larger than
// the number of endpoints (the paper's M), as Envoy's default.
const maglevSize = 65537

// maglevTable is a Maglev consistent-hashing lookup table (Eisenbud et
// al., "Maglev: A Fast and Reliable Software Network Load Balancer",
// NSDI 2016, section 3.4): each endpoint has a permutation of the slots,
// (offset + j·skip) mod M with offset and skip hashed from its address,
// and endpoints take turns claiming their next free slot until the table
// is full. Weights are honoured as in Envoy: an endpoint takes a turn in
// round r only while r·weight keeps up with the turns it has had times
// the largest weight, so its share of slots is proportional to its
// weight. Turns are taken in address order, so the table does not depend
// on the order of the endpoints (DNS answers' order varies) and every
// replica of the gateway builds the same one. Lookups are one modulo and
// one index.
//
// A table is built over the available endpoints; when availability
// changes the backend rebuilds it off the request path. Until then, a
// key whose slot holds a rejected endpoint walks on to the next slots.
type maglevTable struct {
	table []int32 // slot → endpoint index
}

func newMaglevTable(eps []*Endpoint) *maglevTable {
	n := len(eps)
	if n == 0 {
		return &maglevTable{}
	}
	const m = maglevSize
	// pos[i] is the current slot of endpoint i's permutation,
	// (offset + j·skip) mod m, advanced by skip without a division.
	pos := make([]uint64, n)
	skip := make([]uint64, n)
	target := make([]uint64, n)
	maxW := uint64(0)
	for i, ep := range eps {
		pos[i] = xxhash.Sum64String(ep.addr) % m
		skip[i] = xxhash.Sum64String("maglev-skip:"+ep.addr)%(m-1) + 1
		maxW = max(maxW, uint64(ep.weight))
	}
	order := make([]int, n) // turn order: by address
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(eps[a].addr, eps[b].addr) })
	t := make([]int32, m)
	for i := range t {
		t[i] = -1
	}
	// Every round, the endpoints of the largest weight take a turn, so
	// each round fills at least one slot and the loop ends.
	filled := 0
	for round := uint64(1); filled < m; round++ {
		for _, i := range order {
			if filled == m {
				break
			}
			if round*uint64(eps[i].weight) < target[i] {
				continue
			}
			target[i] += maxW
			c := pos[i]
			for t[c] >= 0 {
				if c += skip[i]; c >= m {
					c -= m
				}
			}
			t[c] = int32(i)
			if c += skip[i]; c >= m {
				c -= m
			}
			pos[i] = c
			filled++
		}
	}
	return &maglevTable{table: t}
}

// pick returns the endpoint of key's slot, or, if f rejects it, of the
// first following slot whose endpoint f accepts.
func (t *maglevTable) pick(eps []*Endpoint, key uint64, f filter) *Endpoint {
	m := uint64(len(t.table))
	slot := key % m
	if ep := eps[t.table[slot]]; f.ok(ep) {
		return ep
	}
	fallback := firstOK(eps, 0, f)
	if fallback == nil {
		return nil
	}
	for k := uint64(1); k < m; k++ {
		if ep := eps[t.table[(slot+k)%m]]; f.ok(ep) {
			return ep
		}
	}
	return fallback
}
