package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// snapshotSizes lists the size of every raft snapshot of node i on disk.
func snapshotSizes(t *testing.T, l *Local, i int) []int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(l.configs[i].DataDir, "snapshots", "*", "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			out = append(out, st.Size())
		}
	}
	return out
}

// TestDurableStoreSnapshotsAreReferences: with a durable chain store
// (SyncFSM) every raft snapshot is a reference of a few hundred bytes; a
// follower that fell behind the leader's compacted log is sent the live
// store in its place and ends with the same verified chain; and a
// replica stopped without a clean stop recovers its store in place,
// restoring nothing.
func TestDurableStoreSnapshotsAreReferences(t *testing.T) {
	const trailing = 4
	base := DefaultConfig()
	base.LoopbackTiming()
	base.SyncFSM, base.ReferenceSnapshots = true, true
	base.SnapshotThreshold, base.SnapshotInterval, base.TrailingLogs = 16, 50*time.Millisecond, trailing
	base.ScrubInterval = 0
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base})
	receipts := writeMore(t, l, 0, 20)

	f := follower(l)
	ld := waitLeader(t, l)
	followerLast := ld.localStatus().LastLog
	if err := l.Stop(f); err != nil {
		t.Fatal(err)
	}
	receipts = append(receipts, writeMore(t, l, 20, 120)...)
	waitUntil(t, "the leader to snapshot and compact its log past the stopped follower", time.Minute, func() bool {
		ld, ok := l.Leader(0)
		return ok && ld.localStatus().LastSnapshot > followerLast+1+trailing
	})
	li := indexOf(l, waitLeader(t, l))
	sizes := snapshotSizes(t, l, li)
	if len(sizes) == 0 {
		t.Fatal("the leader has no snapshot on disk")
	}
	for _, s := range sizes {
		if s > 1024 {
			t.Fatalf("a reference snapshot of a durable store is %d bytes", s)
		}
	}

	// An unclean stop on top: the durable store is recovered in place,
	// and the leader streams its live store for the missing part.
	if err := os.Remove(filepath.Join(l.configs[f].DataDir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(f); err != nil {
		t.Fatal(err)
	}
	sameChain(t, l, f, receipts)
	if got := l.Nodes[f].fsm.Restores(); got < 1 {
		t.Fatalf("the follower behind the compacted log restored %d snapshots, want the leader's", got)
	}

	// Another replica stops uncleanly while current: it restores nothing.
	g := follower(l)
	receipts = append(receipts, writeMore(t, l, 140, 10)...)
	sameChain(t, l, g, receipts)
	if err := l.Stop(g); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(l.configs[g].DataDir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(g); err != nil {
		t.Fatal(err)
	}
	receipts = append(receipts, writeMore(t, l, 150, 5)...)
	sameChain(t, l, g, receipts)
	if got := l.Nodes[g].fsm.Restores(); got != 0 {
		t.Fatalf("an unclean restart of a current durable replica restored %d snapshots, want 0 (recovered in place)", got)
	}
	if _, err := os.Stat(chainPath(l, g) + ".damaged"); err == nil {
		t.Fatal("the store was set aside")
	}
}
