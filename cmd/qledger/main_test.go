package main

import (
	"os"
	"testing"

	"qledger/api/contract"
)

// TestMain fails the run when any exchange with an in-process node broke
// the OpenAPI contract (checked in builds with the "contract" tag, as make
// test runs).
func TestMain(m *testing.M) { os.Exit(contract.Main(m)) }
