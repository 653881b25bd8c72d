package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"qledger/api/client"
)

// Failover bounds, documented in docs/RELIABILITY.md ("Failover"): a
// write forwarded by a follower completes within failoverMargin of the
// new leader's election (or of its own start, if later), and the cluster
// is healthy again within healAfter of the heal. Both are generous for a
// loaded two-core machine; `qledger bench failover` measures the gap.
const (
	failoverMargin = 2 * time.Second
	healAfter      = 10 * time.Second
)

// TestFailoverThroughFollowers isolates the leader while one sequential
// writer goes through each follower: no write may wait past the new
// leader's election plus failoverMargin or fail, every acknowledged write
// must be in the log once, and the cluster must be healthy within
// healAfter of the heal.
func TestFailoverThroughFollowers(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping the fault harness: %v (it needs root and `ip netns`)", err)
	}
	c := startHealthyCluster(t)
	ctx := context.Background()
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	followers := others(c, old)

	var h History
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, f := range followers {
		wg.Add(1)
		go func() { defer wg.Done(); sequentialWriter(wctx, &h, i, f, fmt.Sprintf("fo%d", time.Now().UnixNano())) }()
	}
	waitWrites(t, &h, 10) // the writers are running through the followers

	cut := time.Now()
	heal, err := IsolateLeader.Start(ctx, c, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		stop()
		wg.Wait()
		t.Fatal(err)
	}
	elected, err := newLeaderAt(ctx, followers, st.Term)
	if err != nil {
		_ = heal()
		stop()
		wg.Wait()
		t.Fatal(err)
	}
	// Hold the cut well past the election, so writes run on the new leader.
	time.Sleep(time.Until(elected.Add(3 * time.Second)))
	healed := time.Now()
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	healthy := c.WaitHealthy(ctx, healAfter)
	recovered := time.Since(healed)
	stop()
	wg.Wait()
	t.Logf("election %v after the cut; healthy %v after the heal", elected.Sub(cut).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if healthy != nil {
		t.Errorf("not healthy within %v of the heal: %v", healAfter, healthy)
	}

	ops := h.Ops()
	var longest time.Duration
	for _, op := range ops {
		if op.Complete.Before(cut) || op.Invoke.After(healed) {
			continue
		}
		due := maxTime(op.Invoke, elected).Add(failoverMargin)
		if op.Outcome != OK || op.Complete.After(due) {
			t.Errorf("write %s through %s, sent %v after the cut: %s after %v (election %v after the cut; due within %v of it)",
				op.Key, op.Node, op.Invoke.Sub(cut).Round(time.Millisecond), op.Outcome, op.Complete.Sub(op.Invoke).Round(time.Millisecond),
				elected.Sub(cut).Round(time.Millisecond), failoverMargin)
		}
		longest = max(longest, op.Complete.Sub(op.Invoke))
	}
	t.Logf("longest write across the fault: %v", longest.Round(time.Millisecond))

	log, _, err := c.FinalLog(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := CheckDurability(ops, log, nil); !d.OK() {
		t.Fatalf("durability: %v", d.Problems)
	}
}

// sequentialWriter writes through node n, one write at a time, each with
// its own idempotency key, until ctx ends, recording every attempt in h.
// An attempt has 30 s: the client's deadline is not what ends a write.
func sequentialWriter(ctx context.Context, h *History, c int, n *Node, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("%s-w%d-%d", prefix, c, i)
		op := Op{Client: c, Kind: KindWrite, Node: n.Name, Key: key, Invoke: time.Now()}
		octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, _, err := n.API.Submit(octx, []byte(key), client.SubmitOptions{IdempotencyKey: key})
		cancel()
		op.Complete, op.Outcome, op.Err, op.Status = time.Now(), outcome(err), errText(err), statusOf(err)
		if err == nil {
			op.TxID, op.Index, op.Height = r.ID, r.Index, r.Height
		}
		h.Add(op)
	}
}

// waitWrites waits until h holds k acknowledged writes.
func waitWrites(t *testing.T, h *History, k int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		acked := 0
		for _, op := range h.Ops() {
			if op.Outcome == OK {
				acked++
			}
		}
		if acked >= k {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged in a minute, want %d", acked, k)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newLeaderAt polls nodes until one reports itself leader on a term after
// term, and returns when it first saw that.
func newLeaderAt(ctx context.Context, nodes []*Node, term uint64) (time.Time, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := n.Status(sctx)
			cancel()
			if err == nil && st.State == "Leader" && st.Term > term {
				return time.Now(), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("faults: no new leader among the followers in a minute")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
