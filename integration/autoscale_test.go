package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/examples/functions/tiny"
)

// TestMultiProcessAutoscale: a one-voter cluster runs the executor
// autoscaler with the process provider. A burst of invocations scales its
// group from 0 executor processes up; after idling it scales back to 0.
// Every invocation is committed exactly once (one record per request ID,
// retries included) and the voter stays the only voter throughout.
func TestMultiProcessAutoscale(t *testing.T) {
	root := t.TempDir()
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), "--bootstrap",
		"--autoscale", "--autoscale-max", "2", "--autoscale-target", "1", "--autoscale-interval", "300ms",
		"--autoscale-down-window", "2s", "--autoscale-idle", "4s")
	t.Cleanup(func() {
		if a.running() {
			a.signal(syscall.SIGTERM) // its executors leave and exit first
		}
	})
	ctx := context.Background()
	c := a.client()
	waitFor(t, "node a ready", 30*time.Second, func() bool { return c.Ready(ctx) == nil })
	loop, _ := tiny.Module("loop")
	// Each call runs into its 300 ms limit: a recorded timeout outcome,
	// and invocations that stay in flight long enough to be seen.
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "slow", Version: "1", Code: loop, TimeoutMillis: 300}); err != nil {
		t.Fatal(err)
	}
	status := func() (executors int, d *client.ScaleDecision, voters []string) {
		st, err := c.Cluster(ctx)
		if err != nil || len(st.Groups) == 0 {
			return -1, nil, nil
		}
		g := st.Groups[0]
		for _, m := range g.Members {
			switch {
			case m.Suffrage == "voter":
				voters = append(voters, m.ID)
			case m.Role == "executor" && m.Gossip == "alive":
				executors++
			}
		}
		return executors, g.Autoscale, voters
	}
	_, _, before := status()
	if len(before) != 1 {
		t.Fatalf("voters before: %v", before)
	}
	var (
		mu   sync.Mutex
		sent = map[string]bool{}
		// lat holds each invocation's latency by phase.
		lat   = map[string][]time.Duration{}
		phase = "0 executors"
	)
	invoke := func() {
		start := time.Now()
		mu.Lock()
		ph := phase
		mu.Unlock()
		defer func() {
			mu.Lock()
			lat[ph] = append(lat[ph], time.Since(start))
			mu.Unlock()
		}()
		var rid [32]byte
		rand.Read(rid[:])
		id := hex.EncodeToString(rid[:])
		for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(100 * time.Millisecond) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			res, err := c.InvokeWith(cctx, "slow", client.InvokeRequest{Input: []byte("x"), RequestID: id})
			cancel()
			if err == nil && res.Receipt.Height > 0 {
				mu.Lock()
				sent[id] = true
				mu.Unlock()
				return
			}
		}
		t.Errorf("request %s never answered", id[:12])
	}
	burst := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() { defer wg.Done(); invoke() }()
		}
		wg.Wait()
	}
	// Cold start: from the first decision asking for an executor to the
	// first executor process eligible for elections (a configuration
	// member alive in gossip).
	var decided, eligible time.Time
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && eligible.IsZero(); time.Sleep(10 * time.Millisecond) {
			n, d, _ := status()
			if decided.IsZero() && d != nil && d.Desired >= 1 {
				decided = time.Now()
			}
			if n >= 1 {
				eligible = time.Now()
				mu.Lock()
				phase = "with executors (scaling up)"
				mu.Unlock()
			}
		}
	}()
	t0 := time.Now()
	peak := 0
	for time.Since(t0) < 3*time.Minute && peak < 2 && !t.Failed() {
		burst()
		n, _, _ := status()
		peak = max(peak, n)
	}
	if peak < 1 {
		t.Fatalf("the burst started no executor process")
	}
	scaledUp := time.Since(t0)
	<-watch
	// One invocation at a time: demand for one executor, so the group
	// shrinks from two to one under load.
	mu.Lock()
	phase = "scaling down"
	mu.Unlock()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !t.Failed(); {
		invoke()
		if n, _, _ := status(); n <= 1 {
			break
		}
	}
	waitFor(t, "back to zero executors after idling", 3*time.Minute, func() bool {
		n, d, _ := status()
		return n == 0 && d != nil && d.Executors == 0 && d.Desired == 0
	})
	_, _, after := status()
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("voters changed: %v -> %v", before, after)
	}
	// Exactly once: one execution record per request, none other.
	head, err := c.Head(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for h := uint64(1); h <= head.Height; {
		bs, err := c.Blocks(ctx, 0, h, 100, "")
		if err != nil || len(bs) == 0 {
			t.Fatalf("blocks from %d: %v", h, err)
		}
		for _, b := range bs {
			h = b.Height + 1
			for _, tx := range b.Txs {
				if tx.Tx.Kind != "exec" {
					continue
				}
				x, err := client.DecodeExecRecord(tx.Tx.Payload)
				if err != nil {
					t.Fatal(err)
				}
				seen[x.RequestID]++
			}
		}
	}
	for id := range sent {
		if seen[id] != 1 {
			t.Errorf("request %s has %d records", id[:12], seen[id])
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%d records for %d requests", len(seen), len(sent))
	}
	t.Logf("%d invocations; up to %d executor processes within %s of the first burst; cold start (decision to an eligible executor) %s; back to 0",
		len(sent), peak, scaledUp.Round(time.Millisecond), eligible.Sub(decided).Round(time.Millisecond))
	for _, ph := range []string{"0 executors", "with executors (scaling up)", "scaling down"} {
		ds := lat[ph]
		slices.Sort(ds)
		if len(ds) > 0 {
			t.Logf("invocation latency, %s: %d calls, median %s, max %s", ph, len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
		}
	}
}
