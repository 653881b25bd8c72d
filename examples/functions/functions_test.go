package functions_test

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"qledger/examples/functions"
	"qledger/examples/functions/tiny"
)

var wasmMagic = []byte("\x00asm\x01\x00\x00\x00")

func TestBuild(t *testing.T) {
	paths, err := functions.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := functions.Names()
	if len(paths) != len(names) {
		t.Fatalf("built %d examples, want %d", len(paths), len(names))
	}
	for _, name := range names {
		b, err := os.ReadFile(paths[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.HasPrefix(b, wasmMagic) {
			t.Fatalf("%s is not a wasm module", name)
		}
	}
	if !slices.IsSorted(names) || len(functions.GoNames())+len(functions.TinyNames()) != len(names) {
		t.Fatalf("names %v", names)
	}
}

func TestTinyModules(t *testing.T) {
	want := []string{"echo", "exit3", "flood", "loop", "memhog", "noisy", "sources", "tinyclock", "tinyinc", "trap"}
	if got := tiny.Names(); !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	for _, name := range want {
		a, ok := tiny.Module(name)
		b, _ := tiny.Module(name)
		if !ok || !bytes.HasPrefix(a, wasmMagic) || !bytes.Equal(a, b) {
			t.Fatalf("%s: not a stable wasm module", name)
		}
		if len(a) > 1024 {
			t.Fatalf("%s is %d bytes; tiny modules stay under 1 KiB", name, len(a))
		}
	}
	if _, ok := tiny.Module("nope"); ok {
		t.Fatal("unknown module found")
	}
}
