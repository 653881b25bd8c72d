package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDiskFull fills the leader's data directory while clients write and
// read, holds it until the fault shows (its state machine stops, or its
// raft log cannot grow and it falls behind), and frees the space again without restarting the
// node: it must resume by itself (the old node's state machine stayed
// stopped until a restart, and a committed write on it answered 500), no
// request may be answered 500, and every checker must pass.
func TestDiskFull(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping the fault harness: %v (it needs root and `ip netns`)", err)
	}
	c := startHealthyCluster(t)
	ctx := context.Background()
	ld, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deployEcho(t, c)
	w := newWorkload(c, fmt.Sprintf("df%d", time.Now().UnixNano()))
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx, c.Nodes, 1); close(done) }()
	defer func() { stop(); <-done }()

	waitAcked(t, &w.History, 20)
	start := time.Now()
	heal, err := fill(ld)
	if err != nil {
		t.Fatal(err)
	}
	what, err := waitBite(ctx, c, ld, &w.History, start, time.Minute)
	if err != nil {
		heal()
		t.Fatal(err)
	}
	t.Logf("%s's disk full; %s after %v", ld.Name, what, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // the fault holds; clients go on
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("space freed; %s healthy, its state machine running, after %v", ld.Name, time.Since(healed).Round(time.Millisecond))
	waitAcked(t, &w.History, countAcked(w.History.Ops())+20) // writes go on
	stop()
	<-done
	windows := []Window{{Name: DiskFullLeader.Name, Start: start, Healed: healed, Settled: time.Now()}}
	if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	check(t, c, w, windows, 0, "disk full", "go test ./integration/faults -run '^TestDiskFull$' -v")
}

// waitBite waits until the full disk shows at n: its state machine
// stopped (its status says so), a write through it answered 5xx, or the
// cluster is otherwise unhealthy (its raft log cannot grow, so it steps
// down as leader and trails as follower). It says which.
func waitBite(ctx context.Context, c *Cluster, n *Node, h *History, start time.Time, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, op := range h.Ops() {
			if op.Kind == KindWrite && op.Node == n.Name && op.Invoke.After(start) && op.Status >= 500 {
				return fmt.Sprintf("a write through it answered %d: %s", op.Status, strings.TrimSpace(op.Err)), nil
			}
		}
		if why := c.unhealthy(ctx); why != "" {
			return why, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("faults: the full disk did not show at %s in %v", n.Name, d)
}

func countAcked(ops []Op) int {
	k := 0
	for _, op := range ops {
		if op.Kind == KindWrite && op.Outcome == OK {
			k++
		}
	}
	return k
}

// waitAcked waits until h holds k acknowledged writes.
func waitAcked(t *testing.T, h *History, k int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for countAcked(h.Ops()) < k {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged, want %d", countAcked(h.Ops()), k)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
