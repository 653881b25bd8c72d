//go:build race

package chain

// merkleRaceEnabled reports whether the race detector is on. It makes
// SHA-256 about four times slower, so the exhaustive proof tests sample the
// indices of trees above merkleExhaustiveSize (see merkleSampled). `make
// test` runs this package once more without it (FULL_SIZE_PKGS), so CI
// still tries every index.
const merkleRaceEnabled = true
