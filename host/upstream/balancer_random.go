package upstream

import "math/rand/v2"

// weightTable draws endpoint indexes at random in proportion to weight.
type weightTable struct {
	n       int
	uniform bool     // all weights equal: draw uniformly
	cum     []uint64 // cum[i] = weights[0] + … + weights[i]
}

func newWeightTable(eps []*Endpoint) weightTable {
	t := weightTable{n: len(eps), uniform: true}
	for _, ep := range eps {
		if ep.weight != eps[0].weight {
			t.uniform = false
			break
		}
	}
	if t.uniform {
		return t
	}
	t.cum = make([]uint64, len(eps))
	var sum uint64
	for i, ep := range eps {
		sum += uint64(ep.weight)
		t.cum[i] = sum
	}
	return t
}

// draw returns an index with probability weight/total.
func (t *weightTable) draw() int {
	if t.uniform {
		return rand.IntN(t.n)
	}
	r := rand.Uint64N(t.cum[len(t.cum)-1])
	lo, hi := 0, len(t.cum)-1
	for lo < hi { // first i with cum[i] > r
		mid := int(uint(lo+hi) >> 1)
		if t.cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// randomDraws is how many weighted draws Random and P2C try before they
// fall back to an exact scan when the filter rejects what they draw.
const randomDraws = 4

// pickRandom draws an endpoint in proportion to weight among those f
// accepts. Rejection sampling keeps the distribution exact; after a few
// rejections (most endpoints filtered out) an O(n) weighted pass over the
// accepted ones does.
func pickRandom(eps []*Endpoint, w *weightTable, f filter) *Endpoint {
	for range randomDraws {
		if ep := eps[w.draw()]; f.ok(ep) {
			return ep
		}
	}
	return weightedAmong(eps, f)
}

// weightedAmong picks at random in proportion to weight among the
// endpoints f accepts (weighted reservoir sampling, one pass), or nil.
func weightedAmong(eps []*Endpoint, f filter) *Endpoint {
	var chosen *Endpoint
	var sum uint64
	for _, ep := range eps {
		if !f.ok(ep) {
			continue
		}
		sum += uint64(ep.weight)
		if rand.Uint64N(sum) < uint64(ep.weight) {
			chosen = ep
		}
	}
	return chosen
}
