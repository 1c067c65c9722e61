package cache

// Accessors that only the tests use, kept out of the package proper.

// Len is how many responses the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.index {
		for _, e := range m {
			if !e.marker {
				n++
			}
		}
	}
	return n
}
