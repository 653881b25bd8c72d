package execute_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"qledger/examples/functions"
	"qledger/execute"
	"qledger/function"
)

// The example functions, built once per test binary by TestMain.
var (
	fixtureDir string
	codes      = map[string][]byte{}
	shared     *execute.Runtime
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "qledger-execute-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fixtureDir = dir
	paths, err := functions.Build(filepath.Join(dir, "wasm"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: building the example functions (GOOS=wasip1 GOARCH=wasm):", err)
		return 1
	}
	for name, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			return 1
		}
		codes[name] = b
	}
	if raceEnabled {
		// wazero's compiler is more than ten times slower under the race
		// detector (a Go module takes ~8 s instead of ~0.6 s), so fill both
		// caches from a test binary without it; the runtimes below then
		// load the modules from their own cache. TestCacheSurvivesRestart
		// still compiles a Go module cold in this process.
		if err := precompile(paths, sharedCacheDir(), secondCacheDir()); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			return 1
		}
		if dir := wazeroCacheDir(sharedCacheDir()); !exists(dir) {
			fmt.Fprintf(os.Stderr, "note: the precompiled caches do not contain %s; modules will compile in-process (slowly)\n", dir)
		}
	}
	shared, err = execute.New(execute.Config{CacheDir: sharedCacheDir(), CompileWorkers: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: runtime:", err)
		return 1
	}
	defer shared.Close()
	return m.Run()
}

func sharedCacheDir() string { return filepath.Join(fixtureDir, "cache") }
func secondCacheDir() string { return filepath.Join(fixtureDir, "cache2") }

// precompile runs execute/internal/precompile's test, built without the
// race detector, to fill each cache directory with its own compilation of
// every example.
func precompile(paths map[string]string, caches ...string) error {
	args := []string{"test", "-count=1", "-run", "^TestFill$", "./internal/precompile", "-args", "-cache", strings.Join(caches, ",")}
	for _, name := range functions.GoNames() {
		args = append(args, paths[name])
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("precompile: go %v: %v\n%s", args, err, out)
	}
	return nil
}

// wazeroCacheDir is where wazero keeps the compiled modules of this binary
// inside an execute cache directory: its name carries wazero's version as
// read from the build information ("dev" in test binaries).
func wazeroCacheDir(cacheDir string) string {
	version := "dev"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" && d.Version != "" && d.Version != "(devel)" {
				version = d.Version
			}
		}
	}
	return filepath.Join(cacheDir, "wazero-v1.12.0-compiler-closeondone", "wazero-"+version+"-"+runtime.GOARCH+"-"+runtime.GOOS)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// code returns the bytes of a built example.
func code(t testing.TB, name string) []byte {
	t.Helper()
	b, ok := codes[name]
	if !ok {
		t.Fatalf("no example named %q", name)
	}
	return b
}

// specFor returns the default spec of an example, changed by edit.
func specFor(t testing.TB, name string, edit func(*function.Spec)) function.Spec {
	s := function.DefaultSpec(name, "1.0.0", code(t, name))
	if edit != nil {
		edit(&s)
	}
	return s
}

// deploy deploys an example on rt and returns its spec.
func deploy(t testing.TB, rt *execute.Runtime, name string, edit func(*function.Spec)) function.Spec {
	t.Helper()
	s := specFor(t, name, edit)
	if _, err := rt.Deploy(context.Background(), function.Deployment{Spec: s, Code: code(t, name)}); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	return s
}

// invoke runs an example on the shared runtime and fails the test on a
// non-outcome error.
func invoke(t testing.TB, spec function.Spec, rid byte, input string) execute.Result {
	t.Helper()
	res, err := shared.Invoke(context.Background(), spec, requestID(rid), []byte(input))
	if err != nil {
		t.Fatalf("invoke %s: %v", spec.Name, err)
	}
	return res
}

func requestID(b byte) [32]byte {
	var id [32]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}
