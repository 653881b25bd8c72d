//go:build race

package chain

// merkleRaceEnabled reports whether the race detector is on. It makes
// SHA-256 about four times slower, so the exhaustive proof tests sample the
// indices of trees above merkleExhaustiveSize (see merkleSampled).
const merkleRaceEnabled = true
