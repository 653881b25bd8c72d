package fsm

import (
	"os"
	"path/filepath"
	"testing"
)

// TestVerifyStoreFile finds the chain stores under a directory of node
// directories and verifies a stopped node's store offline.
func TestVerifyStoreFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node-a", StoreFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(path, 2, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := New(s, nil)
	apply(f, 1, EncodeAppendBlock(100, [][]byte{tx(2, "", "a", 1), tx(2, "", "b", 2)}))
	apply(f, 2, EncodeAppendBlock(200, [][]byte{tx(2, "", "c", 3)}))
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "node-b.txt"), []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}

	paths, err := FindStores(dir)
	if err != nil || len(paths) != 1 || paths[0] != path {
		t.Fatalf("FindStores: %v, %v", paths, err)
	}
	rep, err := VerifyStoreFile(path)
	if err != nil || rep.Group != 2 || rep.Blocks != 2 || rep.Txs != 3 {
		t.Fatalf("VerifyStoreFile: %+v, %v", rep, err)
	}
	if _, err := VerifyStoreFile(filepath.Join(dir, "none", StoreFile)); err == nil {
		t.Fatal("a missing store verified")
	}
	if paths, err := FindStores(t.TempDir()); err != nil || len(paths) != 0 {
		t.Fatalf("FindStores in an empty directory: %v, %v", paths, err)
	}
	if _, err := FindStores(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("FindStores in a missing directory succeeded")
	}
}
