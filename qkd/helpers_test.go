package qkd

import "testing"

// scale picks a problem size: full, or small under -race and -short.
// `make test` runs this package once more without -race (FULL_SIZE_PKGS),
// so CI checks the full sizes.
func scale(full, small int) int {
	if raceEnabled || testing.Short() {
		return small
	}
	return full
}

func testConfig(seed string, qubits int) Config {
	cfg := DefaultConfig()
	cfg.Seed = []byte(seed)
	cfg.Qubits = qubits
	return cfg
}
