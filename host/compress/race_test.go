//go:build race

package compress

// raceOn: sync.Pool drops items at random under the race detector, so
// allocation counts mean nothing there.
const raceOn = true
