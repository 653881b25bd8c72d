package api

import (
	"os"
	"testing"

	"qledger/api/contract"
)

// TestMain fails the run when any exchange broke the OpenAPI contract
// (checked in builds with the "contract" tag, as make test runs).
func TestMain(m *testing.M) { os.Exit(contract.Main(m)) }
