// Package functions builds the example functions of qledger: WASI command
// modules that read a request on stdin and write a response on stdout.
//
// Go examples (compiled with GOOS=wasip1 GOARCH=wasm from the sources in the
// sub-directories of this package):
//
//	increment  {"value":100} -> {"value":101}, the seed paper's example
//	transform  order batch -> summary (JSON transform)
//	digest     stdin -> length, SHA-256, SHA-512, CRC-32C (hashing)
//	clockrand  reports clock, sleep, random bytes, args, env, file system
//	gomemhog   allocates until the Go runtime runs out of memory
//	hostclock  reads env.host_time, a custom import (non-deterministic)
//
// Tiny examples, hand-assembled by package tiny (no language runtime): see
// that package for tinyinc, echo, loop, memhog, flood, noisy, trap, exit3,
// sources and tinyclock.
//
// The .wasm files are build artifacts and are not committed; Build (or
// `go generate` in this directory) writes them.
package functions

//go:generate go run ./tinygen -go -o .

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"

	"qledger/examples/functions/tiny"
)

// ErrNoGoToolchain means the go command was not found on PATH, so the Go
// examples cannot be built.
var ErrNoGoToolchain = errors.New("functions: go toolchain not found on PATH")

// ErrBuild means building an example failed; the error carries the output
// of the go command.
var ErrBuild = errors.New("functions: build failed")

var goExamples = []string{"clockrand", "digest", "gomemhog", "hostclock", "increment", "transform"}

// GoNames lists the examples written in Go, sorted.
func GoNames() []string { return append([]string(nil), goExamples...) }

// TinyNames lists the hand-assembled examples, sorted.
func TinyNames() []string { return tiny.Names() }

// Names lists every example, sorted.
func Names() []string {
	out := append(GoNames(), TinyNames()...)
	sort.Strings(out)
	return out
}

// Build writes every example as dir/NAME.wasm, creating dir if needed, and
// returns the paths by name. The Go examples are built with one
// `go build -trimpath` invocation for GOOS=wasip1 GOARCH=wasm (the go
// command's build cache makes repeated builds fast); the tiny ones are
// written directly. Build must run where the go command can see the qledger
// module: it uses this package's source directory when it exists on disk,
// otherwise the current directory.
func Build(dir string) (map[string]string, error) {
	out, err := BuildTiny(dir)
	if err != nil {
		return nil, err
	}
	goOut, err := BuildGo(dir)
	if err != nil {
		return nil, err
	}
	for k, v := range goOut {
		out[k] = v
	}
	return out, nil
}

// BuildTiny writes only the hand-assembled examples (no toolchain needed).
func BuildTiny(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	out := map[string]string{}
	for _, name := range tiny.Names() {
		code, _ := tiny.Module(name)
		path := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(path, code, 0o644); err != nil {
			return nil, fmt.Errorf("functions: %w", err)
		}
		out[name] = path
	}
	return out, nil
}

// BuildGo builds only the Go examples.
func BuildGo(dir string) (map[string]string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoGoToolchain, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	// Build into a fresh directory, then rename: go build names wasip1
	// executables after the package directory, without an extension.
	tmp, err := os.MkdirTemp(abs, ".build-")
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	defer os.RemoveAll(tmp)

	args := []string{"build", "-trimpath", "-o", tmp + string(filepath.Separator)}
	for _, name := range goExamples {
		args = append(args, "./"+name)
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = sourceDir()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: go %v in %s: %v\n%s", ErrBuild, args, cmd.Dir, err, outBuf.Bytes())
	}
	out := map[string]string{}
	for _, name := range goExamples {
		path := filepath.Join(abs, name+".wasm")
		if err := os.Rename(filepath.Join(tmp, name), path); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBuild, err)
		}
		out[name] = path
	}
	return out, nil
}

// sourceDir is this package's directory if the binary was built from a
// source tree that still exists (tests, go run), else "" (the current
// directory), in which case ./NAME must resolve from there.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "increment", "main.go")); err != nil {
		return ""
	}
	return dir
}
