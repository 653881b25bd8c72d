package kme

import (
	"context"
	"testing"
)

// BenchmarkEncKeys measures enc_keys requests per second (one 256-bit key
// per request) over mutual TLS with keep-alive connections.
func BenchmarkEncKeys(b *testing.B) {
	cfg := testConfig()
	cfg.MaxKeyCount = 1 << 23 // the benchmark never lets the slave fetch
	srv, ts, p := startKME(b, cfg)
	pool, _ := srv.Pool("alice", "bob")
	c := mustClient(b, ts.URL, p.httpClient(b, "alice"))
	ctx := context.Background()
	refill := func() {
		if pool.Stored() < 1000 {
			pool.Add(make([]byte, 32*50000))
		}
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if pool.Stored() < 1000 {
				b.StopTimer()
				refill()
				b.StartTimer()
			}
			if _, err := c.EncKeys(ctx, "bob", KeyRequest{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("parallel", func(b *testing.B) {
		pool.Add(make([]byte, 32*90000))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.EncKeys(ctx, "bob", KeyRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
