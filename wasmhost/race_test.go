//go:build race

package wasmhost

// raceEnabled: wazero's compiler runs about 30 times slower under the race
// detector, so TestMain fills the compilation cache from a normal build.
const raceEnabled = true
