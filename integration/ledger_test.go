package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/chain"
	"qledger/cluster"
	"qledger/fsm"
)

// testLogger logs at the level in QLEDGER_TEST_LOG (default: nothing).
var testLogger = hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(env("QLEDGER_TEST_LOG", "off")), Output: os.Stderr})

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func startLocal(t *testing.T, groups, replicas int, tune func(*cluster.Config)) *cluster.Local {
	t.Helper()
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	if tune != nil {
		tune(&base)
	}
	// A bound on the first elections, generous for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: groups, Replicas: replicas, DataDir: t.TempDir(), Base: &base, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ack is an acknowledged write.
type ack struct {
	r       cluster.Receipt
	payload string
}

// writers submits from clients goroutines through the given nodes until
// stop is closed, collecting acknowledged writes. Failures are counted, not
// fatal: during a failover some writes are refused.
func writers(nodes []*cluster.Node, group, clients int, stop <-chan struct{}) (func() []ack, *atomic.Int64) {
	var (
		mu    sync.Mutex
		acks  []ack
		wg    sync.WaitGroup
		fails atomic.Int64
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := nodes[(c+i)%len(nodes)]
				p := fmt.Sprintf("client %d write %d", c, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := n.Submit(ctx, chain.Tx{Kind: chain.TxData, Group: uint32(group), Payload: []byte(p)})
				cancel()
				if err != nil {
					fails.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acks = append(acks, ack{r, p})
				mu.Unlock()
			}
		}(c)
	}
	return func() []ack { wg.Wait(); return acks }, &fails
}

// checkAcked verifies every acknowledged write is in the chain exactly
// once, at its receipt's position, with its payload.
func checkAcked(t *testing.T, n *cluster.Node, group int, acks []ack) {
	t.Helper()
	ctx := context.Background()
	// One linearizable read makes everything acknowledged visible on the
	// leader; a leader then answers from its own store.
	retryRead(t, "linearizable head", func() error { _, _, err := n.Head(ctx, group, cluster.Linearizable); return err })
	lookup := func(id chain.Hash) (fsm.TxRecord, int, error) {
		if n.IsLeader() && n.Group() == group {
			rec, err := n.Store().Tx(id)
			return rec, group, err
		}
		return n.Tx(ctx, id, group, cluster.Linearizable)
	}
	seen := map[chain.Hash]bool{}
	for _, a := range acks {
		if seen[a.r.ID] {
			t.Fatalf("two acknowledgements for %s", a.r.ID)
		}
		seen[a.r.ID] = true
		var (
			rec fsm.TxRecord
			g   int
		)
		retryRead(t, fmt.Sprintf("acknowledged write %q", a.payload), func() (err error) { rec, g, err = lookup(a.r.ID); return err })
		tx, _ := chain.DecodeTx(rec.TxBytes)
		if g != group || rec.Location.Index != a.r.Index || rec.Location.Height != a.r.Height || string(tx.Payload) != a.payload {
			t.Fatalf("acknowledged write %q is not where its receipt says", a.payload)
		}
	}
	// And the log holds each payload once.
	count := map[string]int{}
	for from := uint64(1); ; {
		var blocks [][]byte
		retryRead(t, fmt.Sprintf("blocks from %d", from), func() (err error) {
			blocks, err = n.Blocks(ctx, group, from, cluster.MaxBlocksPerRead, cluster.Linearizable)
			return err
		})
		if len(blocks) == 0 {
			break
		}
		for _, raw := range blocks {
			b, _ := chain.DecodeBlock(raw)
			for _, txb := range b.Txs {
				tx, _ := chain.DecodeTx(txb)
				count[string(tx.Payload)]++
			}
			from = b.Header.Height + 1
		}
	}
	for _, a := range acks {
		if count[a.payload] != 1 {
			t.Fatalf("payload %q appears %d times", a.payload, count[a.payload])
		}
	}
}

// retryRead runs a linearizable read until it succeeds. A read that finds
// nothing (cluster's or fsm's ErrNotFound) fails the test at once; others, such as a
// leadership change under the read on a loaded machine, are retried until
// a generous deadline.
func retryRead(t *testing.T, what string, read func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := read()
		switch {
		case err == nil:
			return
		case errors.Is(err, cluster.ErrNotFound) || errors.Is(err, fsm.ErrNotFound):
			t.Fatalf("%s: lost: %v", what, err)
		case time.Now().After(deadline):
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameHeads waits until every running node of group reports the same head.
func sameHeads(t *testing.T, nodes []*cluster.Node, group int) chain.Header {
	t.Helper()
	var head chain.Header
	waitFor(t, "replicas to converge", 15*time.Second, func() bool {
		var first *chain.Header
		for _, n := range nodes {
			if n.Group() != group {
				continue
			}
			h, _, err := n.Store().Head()
			if err != nil {
				return false
			}
			if first == nil {
				first = &h
			} else if h != *first {
				return false
			}
		}
		head = *first
		return true
	})
	return head
}

func verifyStores(t *testing.T, nodes []*cluster.Node) {
	t.Helper()
	for _, n := range nodes {
		seq, ierr := n.Store().AllBlocks()
		rep, err := chain.VerifyChain(uint32(n.Group()), seq)
		if err != nil || ierr() != nil {
			t.Fatalf("node %s: %v %v", n.ID().Short(), err, ierr())
		}
		if h, _, _ := n.Store().Head(); h != rep.Head {
			t.Fatalf("node %s: stored head differs from the verified chain", n.ID().Short())
		}
	}
}

func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	l := startLocal(t, 1, 3, nil)
	stop := make(chan struct{})
	running := append([]*cluster.Node(nil), l.Nodes...)
	collect, fails := writers(running, 0, 8, stop)
	time.Sleep(300 * time.Millisecond)
	var leader *cluster.Node
	waitFor(t, "a leader to kill", time.Minute, func() bool { var ok bool; leader, ok = l.Leader(0); return ok })
	leader.Close()
	var survivors []*cluster.Node
	for _, n := range l.Nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	waitFor(t, "a new leader", 10*time.Second, func() bool { _, ok := l.Leader(0); return ok })
	time.Sleep(300 * time.Millisecond)
	close(stop)
	acks := collect()
	if len(acks) < 50 {
		t.Fatalf("only %d writes acknowledged (%d failed)", len(acks), fails.Load())
	}
	checkAcked(t, survivors[0], 0, acks)
	sameHeads(t, survivors, 0)
	verifyStores(t, survivors)
	t.Logf("%d acknowledged, %d refused during failover", len(acks), fails.Load())
}

// TestRestartedNodeCatchesUpFromDiskAndSnapshot: a follower stopped while
// the leader snapshots and compacts its log past the follower's last entry
// restarts from its own disk, is sent the leader's snapshot (log replay
// alone cannot catch it up), and ends with the same verified chain.
func TestRestartedNodeCatchesUpFromDiskAndSnapshot(t *testing.T) {
	const trailing = 4
	l := startLocal(t, 1, 3, func(c *cluster.Config) {
		c.SnapshotThreshold = 16
		c.SnapshotInterval = 50 * time.Millisecond
		c.TrailingLogs = trailing
		c.MaxBatchTxs = 4
	})
	ctx := context.Background()
	leader, _ := l.Leader(0)
	submitN := func(n *cluster.Node, from, count int) {
		for i := from; i < from+count; i++ {
			if _, err := n.Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprint("w", i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	submitN(leader, 0, 20)
	// Stop a follower; it has everything so far on disk.
	fi := -1
	for i, n := range l.Nodes {
		if n != leader {
			fi = i
			break
		}
	}
	before, _, _ := l.Nodes[fi].Store().Head()
	// The leader's last index bounds the follower's.
	followerLast := leader.Status(ctx).Groups[0].LastLog
	if err := l.Stop(fi); err != nil {
		t.Fatal(err)
	}
	// Far more entries than the trailing logs kept after a snapshot. A
	// snapshot at index s compacts the log up to s-trailing at least; once
	// that passes the follower's next entry, it must be sent a snapshot.
	submitN(leader, 20, 200)
	waitFor(t, "the leader to snapshot and compact its log past the stopped follower", 20*time.Second, func() bool {
		return leader.Status(ctx).Groups[0].LastSnapshot > followerLast+1+trailing
	})
	if err := l.Start(fi); err != nil {
		t.Fatal(err)
	}
	restarted := l.Nodes[fi]
	if h, _, _ := restarted.Store().Head(); h.Height < before.Height {
		t.Fatalf("restart lost local blocks: %d < %d", h.Height, before.Height)
	}
	head := sameHeads(t, l.Nodes, 0)
	if head.LogSize != 220 {
		t.Fatalf("log size %d, want 220", head.LogSize)
	}
	// A clean stop leaves a trusted store, which raft does not reload from
	// a snapshot on start: every restore counted here was sent by the
	// leader.
	if st := restarted.Status(ctx).Groups[0]; st.SnapshotRestores == 0 {
		t.Fatalf("the restarted follower caught up (applied %d) without installing a snapshot; it was stopped at index %d, the leader snapshotted at %d", st.Applied, followerLast, leader.Status(ctx).Groups[0].LastSnapshot)
	}
	verifyStores(t, l.Nodes)
	// The restarted node serves reads and forwards writes.
	if _, err := restarted.Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte("after restart")}); err != nil {
		t.Fatal(err)
	}
	// A full-cluster restart resumes from disk.
	for i := range l.Nodes {
		l.Stop(i)
	}
	for i := range l.Nodes {
		if err := l.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a leader after full restart", 10*time.Second, func() bool { _, ok := l.Leader(0); return ok })
	h := sameHeads(t, l.Nodes, 0)
	if h.LogSize != 221 {
		t.Fatalf("after full restart log size %d, want 221", h.LogSize)
	}
}

func TestIdempotentRetriesAcrossLeaderChanges(t *testing.T) {
	l := startLocal(t, 1, 3, nil)
	ctx := context.Background()
	const keys = 30
	var wg sync.WaitGroup
	receipts := make([][]cluster.Receipt, keys)
	var mu sync.Mutex
	stop := make(chan struct{})
	// Clients retry each key through different nodes while leadership moves.
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for attempt := 0; attempt < 6; attempt++ {
				n := l.Nodes[(k+attempt)%len(l.Nodes)]
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := n.Submit(cctx, chain.Tx{Kind: chain.TxData, IdempotencyKey: fmt.Sprint("key-", k), Payload: []byte(fmt.Sprint("value ", k))})
				cancel()
				if err == nil {
					mu.Lock()
					receipts[k] = append(receipts[k], r)
					mu.Unlock()
				} else if errors.Is(err, cluster.ErrConflict) {
					t.Errorf("key %d: conflict on an identical retry", k)
				}
				time.Sleep(30 * time.Millisecond)
			}
		}(k)
	}
	go func() {
		for i := 0; i < 3; i++ {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
			}
			if ld, ok := l.Leader(0); ok {
				ld.TransferLeadership()
			}
		}
	}()
	wg.Wait()
	close(stop)
	waitFor(t, "a leader", 10*time.Second, func() bool { _, ok := l.Leader(0); return ok })
	leader, _ := l.Leader(0)
	for k, rs := range receipts {
		if len(rs) == 0 {
			t.Fatalf("key %d never acknowledged", k)
		}
		for _, r := range rs[1:] {
			if r.ID != rs[0].ID || r.Index != rs[0].Index {
				t.Fatalf("key %d acknowledged as two different transactions", k)
			}
		}
	}
	h, _, err := leader.Head(ctx, 0, cluster.Linearizable)
	if err != nil || h.LogSize != keys {
		t.Fatalf("log size %d, want %d (each key once): %v", h.LogSize, keys, err)
	}
}

// TestTwoGroupsIndependent: group 1 keeps committing while group 0 has no
// leader (its leader and one follower stopped: no quorum, so no election
// either), and group 0 resumes from where it stopped when they return.
// Each group's acknowledged writes are in its own chain.
func TestTwoGroupsIndependent(t *testing.T) {
	l := startLocal(t, 2, 3, nil)
	stop := make(chan struct{})
	clients := append([]*cluster.Node(nil), l.Nodes...) // l.Start replaces entries of l.Nodes
	c0, _ := writers(clients, 0, 4, stop)
	c1, _ := writers(clients, 1, 4, stop)
	// logSize is group g's log size as its leader has applied it.
	logSize := func(g int) uint64 {
		ld, ok := l.Leader(g)
		if !ok {
			return 0
		}
		h, _, _ := ld.Store().Head()
		return h.LogSize
	}
	waitFor(t, "both groups to commit", time.Minute, func() bool { return logSize(0) >= 10 && logSize(1) >= 10 })

	// Stop group 0's leader and one of its followers.
	ld0, _ := l.Leader(0)
	var down []int
	follower := false
	for i, n := range l.Nodes {
		switch {
		case n.Group() != 0:
		case n == ld0:
			down = append(down, i)
		case !follower:
			down = append(down, i)
			follower = true
		}
	}
	for _, i := range down {
		if err := l.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	// One voter of three is left: group 0 cannot elect a leader until the
	// stopped nodes return, so no leader at both ends of the window means
	// none throughout.
	waitFor(t, "group 0 to have no leader", time.Minute, func() bool { _, ok := l.Leader(0); return !ok })
	from := logSize(1)
	waitFor(t, "group 1 to commit while group 0 has no leader", time.Minute, func() bool { return logSize(1) >= from+20 })
	to := logSize(1)
	if ld, ok := l.Leader(0); ok {
		t.Fatalf("group 0 has a leader (%s) without a quorum", ld.ID().Short())
	}
	close(stop)
	a0, a1 := c0(), c1()
	during := 0
	for _, a := range a1 {
		if a.r.Index >= from && a.r.Index < to {
			during++
		}
	}
	if len(a0) == 0 || during == 0 {
		t.Fatalf("%d writes acknowledged in group 0 before the outage, %d in group 1 during it (log %d to %d)", len(a0), during, from, to)
	}
	t.Logf("group 1 committed %d entries (%d acknowledged here) while group 0 had no leader", to-from, during)

	for _, i := range down {
		if err := l.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "group 0 to elect a leader again", time.Minute, func() bool { _, ok := l.Leader(0); return ok })
	ld, _ := l.Leader(0)
	checkAcked(t, ld, 0, a0)
	checkAcked(t, ld, 1, a1)
	h0 := sameHeads(t, l.Nodes, 0)
	h1 := sameHeads(t, l.Nodes, 1)
	if h0.Group != 0 || h1.Group != 1 || h0.LogRoot == h1.LogRoot {
		t.Fatal("groups are not independent chains")
	}
	verifyStores(t, l.Nodes)
}

// TestUncleanStopRebuildsChainStore simulates a machine crash: the chain
// store (written without fsync) is damaged, the clean-stop marker is
// missing and the boot ID recorded with the store is gone. The node must
// rebuild the store from its raft snapshot and log.
func TestUncleanStopRebuildsChainStore(t *testing.T) {
	dir := t.TempDir()
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	base.SnapshotThreshold = 32
	base.SnapshotInterval = 50 * time.Millisecond
	base.TrailingLogs = 8
	base.MaxBatchTxs = 4
	base.SyncFSM = false // the store written without fsync, snapshots full copies
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: 1, Replicas: 3, DataDir: dir, Base: &base, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	leader, _ := l.Leader(0)
	for i := 0; i < 120; i++ {
		if _, err := leader.Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprint("v", i))}); err != nil {
			t.Fatal(err)
		}
	}
	want := sameHeads(t, l.Nodes, 0)
	fi := 0
	if l.Nodes[0] == leader {
		fi = 1
	}
	ndir := filepath.Join(dir, fmt.Sprintf("node-g0-r%d", fi))
	if err := l.Stop(fi); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ndir, "chain.clean")); err != nil {
		t.Fatalf("a clean stop left no marker: %v", err)
	}
	if err := os.Remove(filepath.Join(ndir, "chain.boot")); err != nil {
		t.Fatalf("no boot ID recorded with the store: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ndir, "chain.db"), []byte("torn write"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(fi); err != nil {
		t.Fatalf("restart after an unclean stop: %v", err)
	}
	got := sameHeads(t, l.Nodes, 0)
	if got != want {
		t.Fatalf("rebuilt head %d, want %d", got.Height, want.Height)
	}
	verifyStores(t, l.Nodes)
}
