package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchFailoverSmoke runs qledger bench failover once, briefly: three
// node processes of a freshly built qledger, one sequential writer, the
// leader stopped for a second. It checks the report, not the timings.
func TestBenchFailoverSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qledger and runs node processes")
	}
	bin := filepath.Join(t.TempDir(), "qledger")
	if out, err := exec.Command("go", "build", "-o", bin, "qledger/cmd/qledger").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := cli(t, "bench", "failover", "--binary", bin, "--rounds", "1", "--clients", "1", "--pause", "1s", "--loopback-timing", "--log-level", "warn")
	if r.code != 0 {
		t.Fatalf("bench failover: %+v", r)
	}
	for _, want := range []string{"qledger bench failover:", "1 clients, round 1: election", "client gap", " 0 failed", "healthy"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("bench failover output lacks %q:\n%s", want, r.stdout)
		}
	}
}
