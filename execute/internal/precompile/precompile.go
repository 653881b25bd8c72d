// Package precompile fills execute compilation caches. The execute tests
// use it when they run under the race detector, which makes wazero's
// compiler more than ten times slower: they run this package's TestFill in
// a separate `go test` process built without the race detector, then load
// the compiled modules from the caches it wrote.
//
// TestFill is a test of a library package on purpose. wazero names its
// cache directory after its own version as read from the binary's build
// information; test binaries of library packages carry no dependency
// versions (wazero reads "dev"), while a command or a command's test would
// read "v1.12.0" and write to a directory the execute tests never look in.
package precompile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"qledger/execute"
	"qledger/function"
)

// Fill creates one Runtime per cache directory and deploys every module
// file in it, so that each directory holds its own, independent
// compilation. A module refused for its imports has been compiled (and
// cached) before the refusal, so it does not stop the run. logf, if not
// nil, receives one line per module.
func Fill(caches, files []string, logf func(format string, args ...any)) error {
	if len(caches) == 0 {
		return errors.New("precompile: no cache directory")
	}
	for _, dir := range caches {
		if err := fill(dir, files, logf); err != nil {
			return err
		}
	}
	return nil
}

func fill(dir string, files []string, logf func(string, ...any)) error {
	rt, err := execute.New(execute.Config{CacheDir: dir, CompileWorkers: 2})
	if err != nil {
		return err
	}
	defer rt.Close()
	for _, f := range files {
		code, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("precompile: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		start := time.Now()
		_, err = rt.Deploy(context.Background(), function.Deployment{Spec: function.DefaultSpec(name, "1", code), Code: code})
		if logf != nil {
			logf("%s %s %s %v", dir, name, time.Since(start).Round(time.Millisecond), err)
		}
		if err != nil && !errors.Is(err, execute.ErrUnsupportedImport) {
			return fmt.Errorf("precompile: %s: %w", name, err)
		}
	}
	return rt.Close()
}
