package upstream

import "math/rand/v2"

// pickP2C is the power of two random choices: draw two distinct endpoints
// in proportion to weight and keep the less loaded (fewer in-flight
// requests relative to weight), then the faster (lower latency EWMA; an
// endpoint not yet measured counts as fastest, so it gets measured), then
// the first drawn. When the draws keep hitting endpoints f rejects, it
// falls back to the least loaded of those f accepts.
func pickP2C(eps []*Endpoint, w *weightTable, f filter) *Endpoint {
	n := len(eps)
	if n == 1 {
		if f.ok(eps[0]) {
			return eps[0]
		}
		return nil
	}
	for range randomDraws {
		i := w.draw()
		j := w.draw()
		for k := 0; j == i && k < 3; k++ {
			j = w.draw()
		}
		if j == i {
			j = (i + 1 + rand.IntN(n-1)) % n
		}
		a, b := eps[i], eps[j]
		aok, bok := f.ok(a), f.ok(b)
		switch {
		case aok && bok:
			return lessLoaded(a, b)
		case aok:
			return a
		case bok:
			return b
		}
	}
	var best *Endpoint
	for _, ep := range eps {
		if f.ok(ep) && (best == nil || lessLoaded(ep, best) == ep) {
			best = ep
		}
	}
	return best
}

// lessLoaded returns the one of a and b with fewer in-flight requests
// relative to weight, then the lower latency EWMA, then a.
func lessLoaded(a, b *Endpoint) *Endpoint {
	la := a.inflight.Load() * int64(b.weight)
	lb := b.inflight.Load() * int64(a.weight)
	switch {
	case la < lb:
		return a
	case lb < la:
		return b
	}
	if b.ewma.Load() < a.ewma.Load() {
		return b
	}
	return a
}
