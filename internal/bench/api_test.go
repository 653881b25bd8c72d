package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api/client"
	"qledger/server"
)

// TestAPILoad drives an embedded 1 × 3 cluster through every node's API,
// closed loop with a read mix at each level and open loop, and checks
// that each report counts the requests it made and no failures. It
// checks counts, never timings.
func TestAPILoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: t.TempDir(), Groups: 1, Replicas: 3, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	connect := func(addr string) (*client.Client, error) { return client.New(addr, nil) }
	for _, c := range []struct {
		name  string
		reads float64
		level client.Level
		rate  float64
	}{
		{"writes", 0, "", 0},
		{"stale reads", 0.5, "stale", 0},
		{"linearizable reads", 0.5, "linearizable", 0},
		{"open loop", 0.2, "", 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := APIConfig{Addrs: lc.Addrs, Connect: connect, Clients: 4, Conns: 2, Duration: 2 * time.Second, Warmup: 50 * time.Millisecond,
				Payload: 32, Rate: c.rate, ReadFraction: c.reads, ReadLevel: c.level, Group: 0, Timeout: 30 * time.Second}
			rep, err := API(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.level == "stale" {
				// A follower may not have applied a write its leader has
				// just acknowledged: a stale read of it is not found.
				delete(rep.Errors, client.CodeNotFound)
			}
			if len(rep.Errors) > 0 || rep.Total.OK == 0 || rep.Writes.OK+rep.Reads.OK != rep.Total.OK || rep.Conns != 2 {
				t.Fatalf("report: %+v", rep)
			}
			if (c.reads > 0) != (rep.Reads.OK > 0) || rep.Writes.OK == 0 && c.reads < 1 {
				t.Fatalf("reads %g, yet %d reads and %d writes", c.reads, rep.Reads.OK, rep.Writes.OK)
			}
			if rep.Total.P50 > rep.Total.P90 || rep.Total.P90 > rep.Total.P99 || rep.Total.P99 > rep.Total.Max {
				t.Fatalf("percentiles out of order: %+v", rep.Total)
			}
			if c.rate > 0 && (rep.Loop != "open" || float64(rep.Total.OK) > c.rate*cfg.Duration.Seconds()+float64(cfg.Clients)) {
				t.Fatalf("open loop at %g/s sent %d in %s: %+v", c.rate, rep.Total.OK, cfg.Duration, rep)
			}
		})
	}
}

// TestAPIErrors checks that a config that cannot run is refused before
// anything is sent, and that a run against nothing fails naming why.
func TestAPIErrors(t *testing.T) {
	connect := func(addr string) (*client.Client, error) { return client.New(addr, nil) }
	good := APIConfig{Addrs: []string{"http://127.0.0.1:1"}, Connect: connect, Clients: 1, Duration: 100 * time.Millisecond, Timeout: time.Second}
	for _, c := range []struct {
		name string
		bad  func(*APIConfig)
	}{
		{"no address", func(c *APIConfig) { c.Addrs = nil }},
		{"no clients", func(c *APIConfig) { c.Clients = 0 }},
		{"negative conns", func(c *APIConfig) { c.Conns = -1 }},
		{"no duration", func(c *APIConfig) { c.Duration = 0 }},
		{"negative payload", func(c *APIConfig) { c.Payload = -1 }},
		{"negative rate", func(c *APIConfig) { c.Rate = -5 }},
		{"read fraction above 1", func(c *APIConfig) { c.ReadFraction = 1.1 }},
		{"unknown read level", func(c *APIConfig) { c.ReadLevel = "eventual" }},
		{"no timeout", func(c *APIConfig) { c.Timeout = 0 }},
		{"bad address", func(c *APIConfig) { c.Addrs = []string{"ftp://x"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.bad(&cfg)
			if _, err := API(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("API: %v, want ErrBadConfig", err)
			}
		})
	}
	rep, err := API(context.Background(), good)
	if !errors.Is(err, ErrNothingSucceeded) || rep.Errors["transport"] == 0 {
		t.Fatalf("API against a closed port: %v, errors %v", err, rep.Errors)
	}
	good.ReadFraction = 0.5
	if _, err := API(context.Background(), good); err == nil || errors.Is(err, ErrBadConfig) {
		t.Fatalf("reads against a closed port: %v, want the seeding writes' error", err)
	}
}
