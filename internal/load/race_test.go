//go:build race

package load

// raceEnabled reports a -race build, in which sync.Pool drops items at
// random (so pooled writers are sometimes allocated anew).
const raceEnabled = true
