package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"

	"qledger/chain"
	"qledger/fsm"
)

// integrityCluster starts one group of three replicas that snapshot
// often, with a captured log, and commits writes one-transaction blocks.
// Their raft snapshots are full copies of the chain store
// (ReferenceSnapshots off), so a damaged store is rebuilt from the
// replica's own snapshot; TestStartReseedsReferenceStoreFromPeer covers
// the default, where it comes from a peer.
func integrityCluster(t *testing.T, writes int) (*Local, *logLines, []Receipt) {
	t.Helper()
	base := DefaultConfig()
	base.LoopbackTiming()
	base.ReferenceSnapshots = false
	base.SnapshotThreshold, base.SnapshotInterval, base.TrailingLogs = 16, 200*time.Millisecond, 8
	base.ScrubInterval = 0
	logs := &logLines{}
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base, Logger: logs.logger()})
	return l, logs, writeMore(t, l, 0, writes)
}

// writeMore commits n more writes of equal size (so blocks can be swapped
// byte for byte) through the leader.
func writeMore(t *testing.T, l *Local, from, n int) []Receipt {
	t.Helper()
	var out []Receipt
	for i := from; i < from+n; i++ {
		ld := waitLeader(t, l)
		out = append(out, submit(t, ld, 0, "", fmt.Sprintf("write %04d", i)))
	}
	return out
}

func waitLeader(t *testing.T, l *Local) *Node {
	t.Helper()
	var ld *Node
	waitUntil(t, "a leader", time.Minute, func() bool {
		var ok bool
		ld, ok = l.Leader(0)
		return ok
	})
	return ld
}

func follower(l *Local) int {
	for i, n := range l.Nodes {
		if !n.IsLeader() {
			return i
		}
	}
	return -1
}

func indexOf(l *Local, n *Node) int {
	for i, m := range l.Nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// editBytes changes every copy of needle in the file at path in place
// (copy-on-write leaves old copies in free pages; they are changed too).
// The file may be open by a running node: the edit lands in the page
// cache its memory map reads.
func editBytes(t *testing.T, path string, needle []byte, edit func(b []byte)) {
	t.Helper()
	if editCopies(t, path, needle, edit) == 0 {
		t.Fatalf("%d bytes not found in %s", len(needle), path)
	}
}

// editCopies is editBytes that reports how many copies it changed.
func editCopies(t *testing.T, path string, needle []byte, edit func(b []byte)) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	found := 0
	now := make([]byte, len(needle))
	for off := 0; ; {
		i := bytes.Index(raw[off:], needle)
		if i < 0 {
			break
		}
		at := off + i
		off = at + len(needle)
		// A running node may have reused a free page since the file
		// was read: write only where the bytes are still the needle,
		// so the edit never lands on a page bbolt wrote meanwhile.
		if _, err := fh.ReadAt(now, int64(at)); err != nil || !bytes.Equal(now, needle) {
			continue
		}
		b := append([]byte(nil), needle...)
		edit(b)
		if _, err := fh.WriteAt(b, int64(at)); err != nil {
			t.Fatal(err)
		}
		found++
	}
	return found
}

// swapBytes exchanges every copy of a with every copy of b (same length)
// in the file at path.
func swapBytes(t *testing.T, path string, a, b []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(needle []byte) (offs []int) {
		for off := 0; ; {
			i := bytes.Index(raw[off:], needle)
			if i < 0 {
				return offs
			}
			offs = append(offs, off+i)
			off += i + len(needle)
		}
	}
	as, bs := at(a), at(b)
	if len(as) == 0 || len(bs) == 0 {
		t.Fatalf("blocks not found in %s", path)
	}
	for _, o := range as {
		copy(raw[o:], b)
	}
	for _, o := range bs {
		copy(raw[o:], a)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func chainPath(l *Local, i int) string { return filepath.Join(l.configs[i].DataDir, fsm.StoreFile) }

// sameChain waits until node i's chain store holds exactly the leader's
// blocks up to the leader's head, and every receipt's transaction.
func sameChain(t *testing.T, l *Local, i int, receipts []Receipt) {
	t.Helper()
	waitUntil(t, "the replica to hold the leader's chain", 2*time.Minute, func() bool {
		ld, ok := l.Leader(0)
		if !ok {
			return false
		}
		want, _ := ld.Store().Blocks(1, 1<<20)
		got, err := l.Nodes[i].Store().Blocks(1, 1<<20)
		if err != nil || len(got) < len(want) || len(want) == 0 {
			return false
		}
		for h := range want {
			if !bytes.Equal(want[h], got[h]) {
				return false
			}
		}
		return true
	})
	for _, r := range receipts {
		rec, err := l.Nodes[i].Store().Tx(r.ID)
		if err != nil || rec.Location.Height != r.Height {
			t.Fatalf("acknowledged transaction %s at height %d: %+v, %v", r.ID, r.Height, rec.Location, err)
		}
	}
	if _, err := l.Nodes[i].Store().Verify(context.Background(), fsm.VerifyOptions{}); err != nil {
		t.Fatalf("the replica's chain does not verify: %v", err)
	}
}

// watchLeading polls, until the test ends, whether n leads while its
// chain alarm is raised; led reports whether it was ever seen to.
func watchLeading(t *testing.T, n *Node) (led func() bool) {
	t.Helper()
	var seen atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if n.chainAlarm() != nil && n.IsLeader() {
				seen.Store(true)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return seen.Load
}

func gauge(t *testing.T, n *Node) float64 {
	t.Helper()
	var m dto.Metric
	if err := mCorrupt.WithLabelValues(n.metrics.node, n.metrics.group).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestStartCheckRebuildsDamagedStore: a replica (a follower, and in one
// case the leader) stopped cleanly whose chain.db was damaged meanwhile
// finds the damage before it serves (which
// height, what), sets the file aside, rebuilds it from the raft snapshot
// and log, and ends with the leader's exact chain and every acknowledged
// write; the alarm it raised is cleared once the rebuilt store verifies.
func TestStartCheckRebuildsDamagedStore(t *testing.T) {
	flip17 := func(t *testing.T, l *Local, i int, _ []byte) {
		b, err := l.Nodes[i].Store().Block(17)
		if err != nil {
			t.Fatal(err)
		}
		l.Stop(i)
		editBytes(t, chainPath(l, i), b, func(b []byte) { b[len(b)-1] ^= 1 })
	}
	cases := []struct {
		name   string
		leader bool // damage the leader's store, not a follower's
		damage func(t *testing.T, l *Local, i int, old []byte)
		want   string // in the damage log line
	}{
		{"flipped transaction byte on the leader", true, flip17, "height=17 what=\"chain: transaction Merkle root mismatch"},
		{"flipped transaction byte", false, flip17, "height=17 what=\"chain: transaction Merkle root mismatch"},
		{"swapped blocks", false, func(t *testing.T, l *Local, i int, _ []byte) {
			b20, _ := l.Nodes[i].Store().Block(20)
			b21, _ := l.Nodes[i].Store().Block(21)
			if len(b20) != len(b21) {
				t.Fatalf("blocks of %d and %d bytes", len(b20), len(b21))
			}
			l.Stop(i)
			swapBytes(t, chainPath(l, i), b20, b21)
		}, "height=20 what=\"chain: height gap"},
		{"truncated file", false, func(t *testing.T, l *Local, i int, _ []byte) {
			// Cut the file where the first copy of the newest block
			// starts: bbolt grows files ahead of use, so a cut by size
			// alone may take only free space.
			head, _, _ := l.Nodes[i].Store().Head()
			b, _ := l.Nodes[i].Store().Block(head.Height)
			l.Stop(i)
			raw, err := os.ReadFile(chainPath(l, i))
			if err != nil {
				t.Fatal(err)
			}
			at := bytes.Index(raw, b)
			if at < 0 {
				t.Fatal("head block not found in the file")
			}
			if err := os.Truncate(chainPath(l, i), int64(at)); err != nil {
				t.Fatal(err)
			}
		}, "what="},
		{"older copy", false, func(t *testing.T, l *Local, i int, old []byte) {
			l.Stop(i)
			if err := os.WriteFile(chainPath(l, i), old, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is behind the raft snapshot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, logs, receipts := integrityCluster(t, 10)
			f := follower(l)
			if c.leader {
				f = indexOf(l, waitLeader(t, l))
			}
			// An older copy: the file as it was after a clean stop.
			if err := l.Stop(f); err != nil {
				t.Fatal(err)
			}
			old, err := os.ReadFile(chainPath(l, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Start(f); err != nil {
				t.Fatal(err)
			}
			receipts = append(receipts, writeMore(t, l, 10, 30)...)
			waitUntil(t, "a snapshot past the older copy on the replica", time.Minute, func() bool {
				s, _ := strconv.ParseUint(l.Nodes[f].raft.Stats()["last_snapshot_index"], 10, 64)
				applied, _ := l.Nodes[f].Store().AppliedIndex()
				return s > 20 && applied >= receipts[len(receipts)-1].Index
			})
			if c.leader && !l.Nodes[f].IsLeader() {
				f = indexOf(l, waitLeader(t, l)) // leadership moved meanwhile
			}
			c.damage(t, l, f, old)
			if err := l.Start(f); err != nil {
				t.Fatal(err)
			}
			n := l.Nodes[f]
			if logs.count("chain store damaged; setting it aside", n.id.Short(), c.want) != 1 {
				t.Fatalf("no damage report with %q for node %s; reports: %q", c.want, n.id.Short(), logs.matching("damaged"))
			}
			if _, err := os.Stat(chainPath(l, f) + ".damaged"); err != nil {
				t.Fatalf("damaged file not set aside: %v", err)
			}
			receipts = append(receipts, writeMore(t, l, 40, 3)...)
			sameChain(t, l, f, receipts)
			waitUntil(t, "the alarm cleared after the rebuilt store verified", time.Minute, func() bool {
				return n.chainAlarm() == nil && gauge(t, n) == 0
			})
		})
	}
}

// TestStartReseedsReferenceStoreFromPeer: with durable stores whose raft
// snapshots are references to them (the default: SyncFSM,
// ReferenceSnapshots), a
// replica — a follower, then the leader — whose store was damaged at
// rest cannot rebuild from its own snapshots: before it serves it takes
// a healthy peer's snapshot, verified, sets the damaged file aside, and
// ends with the leader's exact chain and every acknowledged write, its
// alarm cleared.
func TestStartReseedsReferenceStoreFromPeer(t *testing.T) {
	for _, who := range []string{"follower", "leader"} {
		t.Run(who, func(t *testing.T) {
			base := DefaultConfig()
			base.LoopbackTiming()
			base.SnapshotThreshold, base.SnapshotInterval, base.TrailingLogs = 16, 200*time.Millisecond, 8
			base.ScrubInterval = 0
			logs := &logLines{}
			l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base, Logger: logs.logger()})
			receipts := writeMore(t, l, 0, 30)
			i := follower(l)
			if who == "leader" {
				i = indexOf(l, waitLeader(t, l))
			}
			n := l.Nodes[i]
			waitUntil(t, "a raft snapshot on the replica", time.Minute, func() bool {
				s, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
				return s > 16
			})
			b, err := n.Store().Block(17)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Stop(i); err != nil {
				t.Fatal(err)
			}
			editBytes(t, chainPath(l, i), b, func(b []byte) { b[len(b)-1] ^= 1 })
			receipts = append(receipts, writeMore(t, l, 30, 3)...)
			if err := l.Start(i); err != nil {
				t.Fatalf("start with a damaged store and reference snapshots: %v", err)
			}
			n = l.Nodes[i]
			if logs.count("chain store damaged; setting it aside and rebuilding it from a healthy peer's snapshot", n.id.Short(), "height=17") != 1 {
				t.Fatalf("no damage report for node %s; reports: %q", n.id.Short(), logs.matching("damaged"))
			}
			if _, err := os.Stat(chainPath(l, i) + ".damaged"); err != nil {
				t.Fatalf("damaged file not set aside: %v", err)
			}
			receipts = append(receipts, writeMore(t, l, 33, 3)...)
			sameChain(t, l, i, receipts)
			waitUntil(t, "the alarm cleared after the store verified", time.Minute, func() bool {
				return n.chainAlarm() == nil && gauge(t, n) == 0
			})
		})
	}
}

// TestScrubContainsDamagedReplica: damage in a running replica's store —
// a follower's, then the leader's — is found by a scrub asked through
// another node: the alarm names
// the replica, the first bad height and what is wrong, in status, in
// gossip and in the metric; the replica's reads come from the leader and
// never from its damaged store; it is not ready; a damaged leader hands
// over leadership; leadership handed to the damaged replica is refused,
// and through transfers and elections without the leader it never leads
// while its alarm is raised (it keeps its vote); writes go on. A repair
// then restores the leader's exact chain and clears the alarm, and the
// replica may lead again.
func TestScrubContainsDamagedReplica(t *testing.T) {
	for _, who := range []string{"follower", "leader"} {
		t.Run(who, func(t *testing.T) {
			l, _, receipts := integrityCluster(t, 25)
			i := follower(l)
			if who == "leader" {
				i = indexOf(l, waitLeader(t, l))
			}
			n := l.Nodes[i]
			ctx := context.Background()
			good, err := n.Store().Block(12)
			if err != nil {
				t.Fatal(err)
			}
			editBytes(t, chainPath(l, i), good, func(b []byte) { b[len(b)-1] ^= 1 })
			if b, _ := n.Store().Block(12); bytes.Equal(b, good) {
				t.Fatal("the edit did not reach the running store")
			}
			other := l.Nodes[(i+1)%3]
			reports, err := other.Scrub(ctx, ScrubRequest{Group: 0, Node: n.info.ID[:12]})
			if err != nil || len(reports) != 1 || reports[0].Error != "" {
				t.Fatalf("scrub through another node: %+v, %v", reports, err)
			}
			a := reports[0].Alarm
			if a == nil || a.Node != n.info.ID || a.Height != 12 || !strings.Contains(a.What, "transaction Merkle root mismatch") || a.Source != "scrub" {
				t.Fatalf("scrub alarm %+v", a)
			}
			if gauge(t, n) != 1 {
				t.Fatal("qledger_chain_corrupt is not 1")
			}
			if ok, st := n.Ready(ctx); ok || st.ChainAlarm == nil {
				t.Fatal("a damaged replica reports ready")
			}
			if _, err := n.fsm.Snapshot(); !errors.Is(err, fsm.ErrDamaged) {
				t.Fatalf("a damaged replica took a snapshot: %v", err)
			}
			waitUntil(t, "another replica to lead", time.Minute, func() bool {
				ld, ok := l.Leader(0)
				return ok && ld != n
			})
			// From here on the damaged replica must never lead: it asks
			// for no votes and refuses leadership handed to it.
			led := watchLeading(t, n)
			// Every other node, since whichever leads checks its own
			// gossip view before a transfer.
			waitUntil(t, "the alarm in every other node's status", time.Minute, func() bool {
				for _, o := range l.Nodes {
					if o != n && !hasAlarm(o.Status(ctx), n.info.ID, 12) {
						return false
					}
				}
				return true
			})
			// Every read level on the damaged replica serves the leader's
			// bytes, never its own.
			for _, lv := range []Level{Stale, Default, Linearizable} {
				b, err := n.Block(ctx, 0, 12, lv)
				if err != nil && !errors.Is(err, ErrChainCorrupt) {
					t.Fatalf("%s read on the damaged replica: %v", lv, err)
				}
				if err == nil && !bytes.Equal(b, good) {
					t.Fatalf("%s read served the damaged block", lv)
				}
			}
			receipts = append(receipts, writeMore(t, l, 25, 5)...)
			// Leadership handed to the damaged replica is refused: by
			// the API, and by the replica itself when raft hands it over.
			ld := waitLeader(t, l)
			if _, err := ld.TransferLeadershipTo(ctx, n.info.ID); !errors.Is(err, ErrChainCorrupt) {
				t.Fatalf("transfer to the damaged replica through the API: %v", err)
			}
			if err := ld.raft.LeadershipTransferToServer(raft.ServerID(n.info.ID), raft.ServerAddress(n.info.Addr)).Error(); err == nil {
				t.Fatal("raft handed leadership to the damaged replica without an error")
			}
			// Leadership moves among the healthy voters; writes go on.
			for range 2 {
				waitUntil(t, "a transfer among healthy voters", time.Minute, func() bool {
					tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					_, err := waitLeader(t, l).TransferLeadershipTo(tctx, "")
					return err == nil
				})
				receipts = append(receipts, writeMore(t, l, len(receipts), 1)...)
			}
			// Elections without the leader: the damaged replica, still a
			// voter, votes the healthy one in and never wins itself. (The
			// followers' logs are equal first: a healthy voter missing an
			// entry the damaged one holds could not win without it, and
			// the damaged one would stand after a while, to hand over.)
			for range 2 {
				ld := waitLeader(t, l)
				j := indexOf(l, ld)
				waitUntil(t, "the followers' logs equal to the leader's", time.Minute, func() bool {
					for _, m := range l.Nodes {
						if m.raft.LastIndex() != ld.raft.LastIndex() {
							return false
						}
					}
					return true
				})
				if err := l.Stop(j); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, "a new leader while the old one is down", time.Minute, func() bool {
					ld, ok := l.Leader(0)
					return ok && ld.IsLeader()
				})
				receipts = append(receipts, writeMore(t, l, len(receipts), 1)...)
				if err := l.Start(j); err != nil {
					t.Fatal(err)
				}
			}
			other = l.Nodes[(i+1)%3]
			waitUntil(t, "a healthy leader again", time.Minute, func() bool {
				ld, ok := l.Leader(0)
				return ok && ld != n && ld.IsLeader()
			})
			receipts = append(receipts, writeMore(t, l, 35, 3)...)
			for _, r := range receipts {
				var err error
				waitUntil(t, "a linearizable read of an acknowledged write", time.Minute, func() bool {
					_, _, err = waitLeader(t, l).Tx(ctx, r.ID, 0, Linearizable)
					return err == nil || errors.Is(err, ErrNotFound)
				})
				if err != nil {
					t.Fatalf("acknowledged write %s: %v", r.ID, err)
				}
			}

			// Repair, asked through another node: the replica rebuilds
			// from its raft snapshot and log, verifies, clears the alarm
			// and holds the leader's exact chain.
			reports, err = other.Repair(ctx, ScrubRequest{Group: 0, Node: n.info.ID})
			if err != nil || len(reports) != 1 || reports[0].Error != "" || reports[0].Alarm != nil || reports[0].Blocks == 0 {
				t.Fatalf("repair: %+v, %v", reports, err)
			}
			if n.chainAlarm() != nil || gauge(t, n) != 0 {
				t.Fatal("the alarm is still raised after repair")
			}
			if led() {
				t.Fatal("the damaged replica led its group while its alarm was raised")
			}
			// Repaired, it may lead again.
			waitUntil(t, "leadership handed to the repaired replica", time.Minute, func() bool {
				// Each try is bounded: TransferLeadershipTo waits for the
				// new leader until its context ends.
				tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				to, err := waitLeader(t, l).TransferLeadershipTo(tctx, n.info.ID)
				return err == nil && to == n.info.ID
			})
			receipts = append(receipts, writeMore(t, l, 40, 3)...)
			sameChain(t, l, i, receipts)
			if b, err := n.Block(ctx, 0, 12, Stale); err != nil || !bytes.Equal(b, good) {
				t.Fatalf("stale read after repair: %v", err)
			}
			if ok, st := n.Ready(ctx); !ok && st.ChainAlarm != nil {
				t.Fatal("a repaired replica is not ready")
			}
		})
	}
}

// TestCompareFindsDifferingReplica: a replica whose chain parts from the
// other two at height 12 finds, by comparing with them,
// that it is outvoted and the first differing height; the healthy
// replicas, compared the same way, raise nothing.
func TestCompareFindsDifferingReplica(t *testing.T) {
	l, _, receipts := integrityCluster(t, 25)
	i := follower(l)
	n := l.Nodes[i]
	// Edit a store that has applied every write: a block applied during
	// the edit can rewrite a page from its unedited copy.
	sameChain(t, l, i, receipts)
	// The replica's chain parts from the others' at height 12: every
	// header from there on differs (a byte of each timestamp).
	head, _, _ := n.Store().Head()
	for h := uint64(12); h <= head.Height; h++ {
		b, err := n.Store().Block(h)
		if err != nil {
			t.Fatal(err)
		}
		editBytes(t, chainPath(l, i), b[:chain.HeaderSize], func(b []byte) { b[50] ^= 1 })
	}
	ctx := context.Background()
	for j, m := range l.Nodes {
		if j != i {
			m.compareWithPeers(ctx)
			if m.chainAlarm() != nil {
				t.Fatalf("healthy replica %d raised %v", j, m.chainAlarm())
			}
		}
	}
	n.compareWithPeers(ctx)
	a := n.chainAlarm()
	if a == nil || a.Height != 12 || a.Source != "compare" {
		t.Fatalf("compare alarm %+v", a)
	}
}

// TestCloseEndsACompare: a comparison waiting on a member that never
// answers ends when the node closes. A node cut off from its group and
// told to leave took 20 s and more to exit now and then: Close waited for
// a compare that had begun while the node was cut off to run out its RPC
// timeout (10 s) after everything else had stopped.
func TestCloseEndsACompare(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	base.ScrubInterval, base.CompareInterval, base.RPCTimeout = 0, 50*time.Millisecond, 5*time.Minute
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 1, Base: &base})
	writeMore(t, l, 0, compareLag+4) // a compare needs a height below the head
	n := l.Nodes[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reached := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached <- c // held open, never answered
		}
	}()
	n.dir.merge([]dirEntry{{NodeInfo: NodeInfo{ID: NewNodeID().String(), Group: n.group, Addr: ln.Addr().String()}, Epoch: time.Now().UnixNano()}})
	select {
	case c := <-reached:
		defer c.Close()
	case <-time.After(2 * time.Minute):
		t.Fatal("no compare reached the member that never answers")
	}
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		t.Logf("closed %v after a compare began waiting (error %v)", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(2 * time.Minute):
		t.Fatal("Close waited for the compare to run out its RPC timeout")
	}
}

// TestDamagedReplicaStandsOnlyWithoutLeader: a damaged replica asks for
// no votes while its group has a leader it hears from, and stands again
// once the group has gone without one for standAfter election timeouts
// (raft can then need its log to elect anyone).
func TestDamagedReplicaStandsOnlyWithoutLeader(t *testing.T) {
	l, _, _ := integrityCluster(t, 3)
	i := follower(l)
	n := l.Nodes[i]
	n.raiseAlarm(fsm.Damage{Height: 1, What: "test damage"}, "scrub")
	if err := n.refuseStanding(); !errors.Is(err, ErrChainCorrupt) {
		t.Fatalf("a damaged replica with a leader may stand: %v", err)
	}
	if err := n.refuseTransfer(); !errors.Is(err, ErrChainCorrupt) {
		t.Fatalf("a damaged replica takes leadership handed to it: %v", err)
	}
	for j := range l.Nodes {
		if j != i {
			if err := l.Stop(j); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, "the damaged replica to stand after a leaderless while", time.Minute, func() bool {
		return n.refuseStanding() == nil
	})
	if err := n.refuseTransfer(); !errors.Is(err, ErrChainCorrupt) {
		t.Fatalf("a damaged replica takes leadership handed to it: %v", err)
	}
}

// hasAlarm reports whether st shows node's alarm at height.
func hasAlarm(st ClusterStatus, node string, height uint64) bool {
	for _, g := range st.Groups {
		for _, ga := range g.ChainAlarms {
			if ga.Node == node && ga.Height == height {
				return true
			}
		}
	}
	return false
}

// TestStatelessTailIsNoGap: a store whose applied index stops short of the
// newest snapshot only by barriers and no-ops (which raft never hands to
// the state machine) is whole; a gap with a command, a configuration
// change or an entry the log no longer holds is not.
func TestStatelessTailIsNoGap(t *testing.T) {
	logs := raft.NewInmemStore()
	entries := []*raft.Log{
		{Index: 1, Type: raft.LogCommand}, {Index: 2, Type: raft.LogBarrier}, {Index: 3, Type: raft.LogNoop},
		{Index: 4, Type: raft.LogConfiguration}, {Index: 5, Type: raft.LogBarrier},
	}
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		first, last uint64
		want        bool
	}{
		{2, 3, true}, {5, 5, true}, {1, 3, false}, {2, 4, false}, {5, 6, false},
	} {
		if got := stateless(logs, c.first, c.last); got != c.want {
			t.Errorf("entries %d..%d: stateless %v, want %v", c.first, c.last, got, c.want)
		}
	}
}
