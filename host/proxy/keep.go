package proxy

import (
	"sync"
)

// kept holds what outlives a generation, by key (a resource's
// fingerprint): a backend whose spec did not change keeps its connection
// pools, health and outlier state; a policy whose spec and module did not
// change keeps its plugin, VMs and in-VM state. Every generation that uses
// an entry holds a reference; the entry closes when the last generation
// using it has drained.
type kept[T any] struct {
	mu sync.Mutex
	m  map[string]*keptEntry[T]
}

type keptEntry[T any] struct {
	v     T
	refs  int
	close func(T)
}

// get returns the entry for key with a reference taken, building it if no
// generation holds one. reused reports whether it was already there.
func (k *kept[T]) get(key string, build func() (T, error), close func(T)) (v T, reused bool, err error) {
	k.mu.Lock()
	if e := k.m[key]; e != nil {
		e.refs++
		k.mu.Unlock()
		return e.v, true, nil
	}
	k.mu.Unlock()
	// Builds run under Gateway.mu (Apply is serialized), so no other
	// build of the same key races this one; releases may, which only
	// remove entries.
	v, err = build()
	if err != nil {
		return v, false, err
	}
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keptEntry[T]{}
	}
	k.m[key] = &keptEntry[T]{v: v, refs: 1, close: close}
	k.mu.Unlock()
	return v, false, nil
}

// put drops a reference to key; the last one closes the entry.
func (k *kept[T]) put(key string) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		k.mu.Unlock()
		return
	}
	e.refs--
	if e.refs > 0 {
		k.mu.Unlock()
		return
	}
	delete(k.m, key)
	k.mu.Unlock()
	e.close(e.v)
}
