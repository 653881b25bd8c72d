package qkd

import "testing"

// scale picks a problem size: full, or small under -race and -short.
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
