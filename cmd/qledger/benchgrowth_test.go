package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchGrowthSmoke runs qledger bench growth tiny: three node
// processes of a freshly built qledger with durable stores, grown to a
// few hundred transactions in two steps, each step restarting a follower
// cleanly and after SIGKILL. It checks the report, not the figures.
func TestBenchGrowthSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qledger and runs node processes")
	}
	bin := filepath.Join(t.TempDir(), "qledger")
	if out, err := exec.Command("go", "build", "-o", bin, "qledger/cmd/qledger").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := cli(t, "bench", "growth", "--binary", bin, "--to", "300", "--steps", "2", "--clients", "4", "--reads", "10", "--durable-store")
	if r.code != 0 {
		t.Fatalf("bench growth: %+v", r)
	}
	for _, want := range []string{"qledger bench growth:", "100 tx:", "300 tx:", "disk B/tx chain", "SIGKILL"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("bench growth output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := cli(t, "bench", "growth", "--binary", bin, "--to", "0"); r.code == 0 {
		t.Fatalf("bench growth --to 0 succeeded: %+v", r)
	}
}
