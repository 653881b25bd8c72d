package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"qledger/fsm"
)

// TestRepairFromPeerSnapshot: a follower whose chain store is damaged,
// whose raft log was compacted past the entries a rebuild needs and
// whose own raft snapshots are damaged too, cannot rebuild from its own
// raft state; repair takes the leader's snapshot, verifies it, continues
// it with its own log, clears the alarm and ends with the leader's exact
// chain and every acknowledged write. An alarmed replica refuses to be a
// source, and a damaged snapshot from a peer changes nothing.
func TestRepairFromPeerSnapshot(t *testing.T) {
	l, logs, receipts := integrityCluster(t, 10)
	i := follower(l)
	n := l.Nodes[i]
	ctx := context.Background()
	receipts = append(receipts, writeMore(t, l, 10, 30)...)
	waitUntil(t, "the follower's log compacted past its first entries", time.Minute, func() bool {
		first, err := n.logStore.FirstIndex()
		applied, _ := n.Store().AppliedIndex()
		return err == nil && first > 2 && applied >= receipts[len(receipts)-1].Index
	})
	good, err := n.Store().Block(5)
	if err != nil {
		t.Fatal(err)
	}
	editBytes(t, chainPath(l, i), good, func(b []byte) { b[len(b)-1] ^= 1 })
	other := l.Nodes[(i+1)%3]
	reports, err := other.Scrub(ctx, ScrubRequest{Group: 0, Node: n.info.ID})
	if err != nil || len(reports) != 1 || reports[0].Alarm == nil || reports[0].Alarm.Height != 5 {
		t.Fatalf("scrub: %+v, %v", reports, err)
	}
	// Its own raft snapshots carry the damage too (they were taken from
	// the damaged file, below the window a snapshot checks).
	snaps, err := filepath.Glob(filepath.Join(l.configs[i].DataDir, "snapshots", "*", "state.bin"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("raft snapshots of the follower: %v, %v", snaps, err)
	}
	// A snapshot taken after the edit already holds the damaged block.
	for _, s := range snaps {
		editCopies(t, s, good, func(b []byte) { b[len(b)-1] ^= 1 })
	}
	receipts = append(receipts, writeMore(t, l, 40, 5)...)

	// An alarmed replica is never a source.
	if err := other.rebuildFrom(ctx, n.info); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a snapshot from the alarmed replica: %v", err)
	}

	reports, err = other.Repair(ctx, ScrubRequest{Group: 0, Node: n.info.ID})
	if err != nil || len(reports) != 1 || reports[0].Error != "" || reports[0].Alarm != nil {
		t.Fatalf("repair: %+v, %v", reports, err)
	}
	if logs.count("rebuilding the chain store from a peer's snapshot", n.id.Short()) == 0 {
		t.Fatalf("the repair did not use a peer's snapshot: %q", logs.matching("rebuil"))
	}
	if n.chainAlarm() != nil || gauge(t, n) != 0 {
		t.Fatal("the alarm is still raised after repair")
	}
	if b, err := n.Store().Block(5); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("block 5 after repair: %v", err)
	}
	receipts = append(receipts, writeMore(t, l, 45, 3)...)
	sameChain(t, l, i, receipts)
	if s, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64); s == 0 {
		t.Fatal("no raft snapshot on the follower")
	}
}

// TestPeerSnapshotDamagedInTransit: a snapshot that does not verify is
// refused — by the sender's full check as it sends, before the end — and
// the receiver's store is left as it was.
func TestPeerSnapshotDamagedInTransit(t *testing.T) {
	l, logs, _ := integrityCluster(t, 40)
	i := follower(l)
	n := l.Nodes[i]
	src := l.Nodes[(i+1)%3]
	good, err := src.Store().Block(7)
	if err != nil {
		t.Fatal(err)
	}
	// The source's store is damaged below the newest blocks a snapshot
	// checks, and no scrub has found it yet: its full check as it sends
	// refuses the snapshot before the end, and the receiver (whose own
	// full check would refuse it too) gets no whole copy.
	editBytes(t, chainPath(l, (i+1)%3), good, func(b []byte) { b[len(b)-1] ^= 1 })
	err = n.rebuildFrom(context.Background(), src.info)
	if err == nil {
		t.Fatal("a damaged snapshot was used")
	}
	waitUntil(t, "the source's refusal in its log", time.Minute, func() bool {
		return logs.count("snapshot not sent: it does not verify", "transaction Merkle root mismatch") > 0
	})
	if b, err := n.Store().Block(7); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("the receiver's store changed: %v", err)
	}
}

// TestPeerSnapshotOverTLS: over mutual TLS a replica takes its snapshot
// from the peer it names, and a peer answering at that address with
// another identity is refused before any byte of a snapshot is read.
func TestPeerSnapshotOverTLS(t *testing.T) {
	l, _ := startTLSLocal(t, 1, 3)
	for i := range 5 {
		submit(t, waitLeader(t, l), 0, "", fmt.Sprint("over TLS ", i))
	}
	n, src, other := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	ctx := context.Background()
	waitUntil(t, "the replicas at the same head", time.Minute, func() bool {
		a, _, _ := n.Store().Head()
		b, _, _ := src.Store().Head()
		return a.LogSize == 5 && a == b
	})
	if err := n.rebuildFrom(ctx, src.info); err != nil {
		t.Fatalf("rebuild from a peer over TLS: %v", err)
	}
	impostor := src.info
	impostor.ID = other.info.ID
	if err := n.rebuildFrom(ctx, impostor); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("a peer with another identity: %v", err)
	}
	if _, err := n.Store().Verify(ctx, fsm.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
