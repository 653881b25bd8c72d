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

// TestDurableStoreSnapshotsAreReferences: by default (a durable chain
// store, SyncFSM) every raft snapshot is a reference of a few hundred
// bytes; a follower that fell behind the leader's compacted log is sent
// the live store in its place and ends with the same verified chain; and
// a replica stopped as by a machine crash (no clean stop, another boot)
// recovers its store in place, restoring nothing.
func TestDurableStoreSnapshotsAreReferences(t *testing.T) {
	const trailing = 4
	base := DefaultConfig()
	base.LoopbackTiming()
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

	// Another replica stops as in a machine crash while current: it
	// restores nothing.
	g := follower(l)
	receipts = append(receipts, writeMore(t, l, 140, 10)...)
	sameChain(t, l, g, receipts)
	if err := l.Stop(g); err != nil {
		t.Fatal(err)
	}
	machineCrash(t, l.configs[g].DataDir)
	if err := l.Start(g); err != nil {
		t.Fatal(err)
	}
	// Checked before any further write: the leader's replication to a
	// restarted follower resumes after a back-off, and with 4 trailing
	// entries a few writes meanwhile may compact past it, so that it is
	// then sent a snapshot however its store was recovered.
	sameChain(t, l, g, receipts)
	if got := l.Nodes[g].fsm.Restores(); got != 0 {
		t.Fatalf("an unclean restart of a current durable replica restored %d snapshots, want 0 (recovered in place)", got)
	}
	if _, err := os.Stat(chainPath(l, g) + ".damaged"); err == nil {
		t.Fatal("the store was set aside")
	}
	receipts = append(receipts, writeMore(t, l, 150, 5)...)
	sameChain(t, l, g, receipts)
}

// machineCrash makes dir's last stop look like a machine crash: no
// clean-stop marker, and the store's boot ID gone.
func machineCrash(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{cleanMarker, bootMarker} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpgradeFromFullCopySnapshots: data directories written in the mode
// before reference snapshots (the chain store without fsync, every raft
// snapshot a full copy) start in the default mode: after a clean stop
// the store is kept; after a machine crash it is rebuilt from the old
// full-copy snapshot, whether the directory records how the store was
// written (chain.sync) or predates that record; every replica ends with
// the same verified chain and every acknowledged write, and the
// snapshots taken from then on are references, the copies reaped.
func TestUpgradeFromFullCopySnapshots(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	base.SyncFSM, base.ReferenceSnapshots = false, false
	base.SnapshotThreshold, base.SnapshotInterval, base.TrailingLogs = 16, 50*time.Millisecond, 4
	base.ScrubInterval = 0
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base})
	receipts := writeMore(t, l, 0, 40)
	for i := range l.Nodes {
		sameChain(t, l, i, receipts)
		waitUntil(t, "a full-copy snapshot on every replica", time.Minute, func() bool {
			sizes := snapshotSizes(t, l, i)
			return len(sizes) > 0 && sizes[0] > 1024
		})
	}
	for i := range l.Nodes {
		if err := l.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	// Replica 0 stopped cleanly; 1 crashed with its mode recorded; 2
	// crashed and predates the record.
	machineCrash(t, l.configs[1].DataDir)
	machineCrash(t, l.configs[2].DataDir)
	if err := os.Remove(filepath.Join(l.configs[2].DataDir, syncMarker)); err != nil {
		t.Fatal(err)
	}
	for i := range l.configs {
		l.configs[i].SyncFSM, l.configs[i].ReferenceSnapshots = true, true
	}
	for i := range l.Nodes {
		if err := l.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []uint64{0, 1, 1} {
		if got := l.Nodes[i].fsm.Restores(); got != want {
			t.Fatalf("replica %d restored %d snapshots at start, want %d", i, got, want)
		}
	}
	receipts = append(receipts, writeMore(t, l, 40, 60)...)
	for i := range l.Nodes {
		sameChain(t, l, i, receipts)
		waitUntil(t, "only reference snapshots left on every replica", time.Minute, func() bool {
			sizes := snapshotSizes(t, l, i)
			for _, s := range sizes {
				if s > 1024 {
					return false
				}
			}
			return len(sizes) > 0
		})
		b, err := os.ReadFile(filepath.Join(l.configs[i].DataDir, syncMarker))
		if err != nil || string(b) != syncOn {
			t.Fatalf("replica %d sync marker %q, %v; want %q", i, b, err, syncOn)
		}
	}
}
