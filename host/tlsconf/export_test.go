package tlsconf

// Accessors that only the tests use, kept out of the package proper.

// Reloads counts the pairs loaded after the first.
func (c *Cert) Reloads() int64 { return c.reloads.Load() }

// Staples counts the OCSP responses stapled.
func (c *Cert) Staples() int64 { return c.staples.Load() }
