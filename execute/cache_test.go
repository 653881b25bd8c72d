package execute_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"qledger/execute"
	"qledger/function"
)

// TestCacheSurvivesRestart compiles a Go module in one Runtime, closes it,
// and deploys the module again in a new Runtime on the same directory: the
// second deploy loads it from disk. The timings are logged, not asserted.
func TestCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	round := func() (execute.DeployInfo, execute.Result) {
		rt, err := execute.New(execute.Config{CacheDir: dir, CompileWorkers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		s := specFor(t, "increment", nil)
		info, err := rt.Deploy(context.Background(), function.Deployment{Spec: s, Code: code(t, "increment")})
		if err != nil {
			t.Fatal(err)
		}
		res, err := rt.Invoke(context.Background(), s, requestID(3), []byte(`{"value":100}`))
		if err != nil || string(res.Stdout) != `{"value":101}` {
			t.Fatalf("invoke: %v %q", err, res.Stdout)
		}
		return info, res
	}
	cold, r1 := round()
	files := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("nothing written to the cache directory")
	}
	warm, r2 := round()
	if !cold.Compiled || !warm.Compiled || r1.Hash != r2.Hash {
		t.Fatalf("cold %+v warm %+v", cold, warm)
	}
	t.Logf("increment (%d bytes): compiled in %s, loaded from the on-disk cache in %s (%.0fx)",
		len(code(t, "increment")), cold.CompileTime, warm.CompileTime, float64(cold.CompileTime)/float64(warm.CompileTime))
}
