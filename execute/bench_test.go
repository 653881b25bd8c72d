package execute_test

import (
	"context"
	"encoding/binary"
	"testing"

	"qledger/execute"
	"qledger/function"
)

// BenchmarkCompile measures Deploy on a fresh Runtime: "cold" with an empty
// in-memory cache (a full compilation), "cached" loading from a warm
// on-disk cache (what a restarted node does).
func BenchmarkCompile(b *testing.B) {
	for _, name := range []string{"tinyinc", "increment"} {
		d := function.Deployment{Spec: specFor(b, name, nil), Code: code(b, name)}
		b.Run(name+"/cold", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rt, err := execute.New(execute.Config{CompileWorkers: 2})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := rt.Deploy(context.Background(), d); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rt.Close()
				b.StartTimer()
			}
		})
		b.Run(name+"/cached", func(b *testing.B) {
			dir := b.TempDir()
			warm, err := execute.New(execute.Config{CacheDir: dir, CompileWorkers: 2})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := warm.Deploy(context.Background(), d); err != nil {
				b.Fatal(err)
			}
			warm.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rt, err := execute.New(execute.Config{CacheDir: dir, CompileWorkers: 2})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := rt.Deploy(context.Background(), d); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rt.Close()
				b.StartTimer()
			}
		})
	}
}

var benchInputs = map[string]string{
	"tinyinc":   `{"value":100}`,
	"echo":      `{"value":100}`,
	"increment": `{"value":100}`,
	"digest":    `{"value":100}`,
}

// BenchmarkInvoke measures one call (fresh instance, run, hash) on a
// deployed module: the platform's per-call cost with the tiny modules, and
// with the Go runtime's start-up for the Go ones.
func BenchmarkInvoke(b *testing.B) {
	for _, name := range []string{"tinyinc", "echo", "increment", "digest"} {
		spec := deploy(b, shared, name, nil)
		in := []byte(benchInputs[name])
		b.Run(name, func(b *testing.B) {
			var id [32]byte
			for i := 0; i < b.N; i++ {
				binary.BigEndian.PutUint64(id[:], uint64(i))
				res, err := shared.Invoke(context.Background(), spec, id, in)
				if err != nil || !res.OK() {
					b.Fatalf("%v %v", res.Err(), err)
				}
			}
		})
	}
}

// BenchmarkInvokeParallel is BenchmarkInvoke with GOMAXPROCS concurrent
// callers: the throughput one node can offer.
func BenchmarkInvokeParallel(b *testing.B) {
	for _, name := range []string{"tinyinc", "increment"} {
		spec := deploy(b, shared, name, nil)
		in := []byte(benchInputs[name])
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				var id [32]byte
				for i := uint64(0); pb.Next(); i++ {
					binary.BigEndian.PutUint64(id[:], i)
					res, err := shared.Invoke(context.Background(), spec, id, in)
					if err != nil || !res.OK() {
						b.Errorf("%v %v", res.Err(), err)
						return
					}
				}
			})
		})
	}
}
