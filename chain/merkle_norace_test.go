//go:build !race

package chain

// merkleRaceEnabled reports whether the race detector is on (see
// merkle_race_test.go).
const merkleRaceEnabled = false
