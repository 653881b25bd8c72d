package api

import (
	"os"
	"testing"

	"qledger/api/contract"
)

// TestMain fails the run when any exchange broke the OpenAPI contract
// (checked in builds with the "contract" tag, as make test runs). Started
// with serveApartEnv set, the binary serves an API for a benchmark in
// another process instead.
func TestMain(m *testing.M) {
	if spec := os.Getenv(serveApartEnv); spec != "" {
		os.Exit(serveApart(spec))
	}
	os.Exit(contract.Main(m))
}
