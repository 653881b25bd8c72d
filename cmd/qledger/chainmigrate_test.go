package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qledger/fsm"
)

// `chain migrate --data` converts a stopped node's format-1 store (one
// written by the format-1 build, fsm/testdata), which `chain verify
// --data` refuses before and verifies after; a second run has nothing to
// do.
func TestChainMigrate(t *testing.T) {
	fh, err := os.Open(filepath.Join("..", "..", "fsm", "testdata", "format1.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "node1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fsm.StoreFile)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, "chain", "verify", "--data", dir); r.code != exitFailure || !strings.Contains(r.stdout, fmt.Sprintf("version 1, this build reads version %d", fsm.FormatVersion)) {
		t.Fatalf("chain verify of a format-1 store: %+v", r)
	}
	if r := cli(t, "chain", "migrate", "--data", dir); r.code != exitOK || !strings.Contains(r.stdout, fmt.Sprintf("%s: converted to format %d", path, fsm.FormatVersion)) {
		t.Fatalf("chain migrate: %+v", r)
	}
	if r := cli(t, "chain", "verify", "--data", dir); r.code != exitOK || !strings.Contains(r.stdout, "ok  group 1  120 blocks  360 transactions") {
		t.Fatalf("chain verify after the migration: %+v", r)
	}
	if r := cli(t, "chain", "migrate", "--data", dir); r.code != exitOK || !strings.Contains(r.stdout, fmt.Sprintf("already format %d", fsm.FormatVersion)) {
		t.Fatalf("second chain migrate: %+v", r)
	}
	cli(t, "chain", "migrate").want(t, exitUsage, "--data is required")
}
