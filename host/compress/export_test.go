package compress

// Accessors that only the tests use, kept out of the package proper.

// Encoding returns the coding chosen for the response so far: Identity
// until the decision, and when the response goes unencoded.
func (w *Writer) Encoding() Algorithm {
	if w.state == stateEncoding {
		return w.alg
	}
	return Identity
}
