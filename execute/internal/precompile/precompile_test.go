package precompile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qledger/examples/functions/tiny"
)

// The execute tests start TestFill with flags:
//
//	go test -run '^TestFill$' ./internal/precompile -args -cache DIR [-cache DIR2] a.wasm ...
var fillCaches = flag.String("cache", "", "comma-separated cache directories to fill with the modules named as arguments")

func TestFill(t *testing.T) {
	if *fillCaches != "" {
		if err := Fill(strings.Split(*fillCaches, ","), flag.Args(), t.Logf); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Without flags: fill a fresh cache with two tiny modules, one of them
	// refused for its imports, and check that the directory was written.
	dir := t.TempDir()
	var files []string
	for _, name := range []string{"echo", "tinyclock"} {
		code, _ := tiny.Module(name)
		f := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(f, code, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cache := filepath.Join(dir, "cache")
	if err := Fill([]string{cache}, files, t.Logf); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(cache); err != nil || len(entries) == 0 {
		t.Fatalf("cache directory empty: %v", err)
	}
	if err := Fill(nil, files, nil); err == nil {
		t.Fatal("no cache directory accepted")
	}
	if err := Fill([]string{cache}, []string{filepath.Join(dir, "missing.wasm")}, nil); err == nil {
		t.Fatal("missing file accepted")
	}
}
