package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newRefFSM is newFSM with ReferenceSnapshots.
func newRefFSM(t *testing.T, group uint32) *FSM {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "chain.db"), group, StoreOptions{ReferenceSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return New(s, nil)
}

// snapStore is a raft file snapshot store in a temporary directory, seen
// through SnapshotStore for f.
func snapStore(t *testing.T, f *FSM) (raw, wrapped raft.SnapshotStore) {
	t.Helper()
	fs, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return fs, SnapshotStore(fs, f)
}

// persist takes a raft snapshot of f at index into store.
func persist(t *testing.T, f *FSM, store raft.SnapshotStore, index uint64) (string, error) {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		return "", err
	}
	defer snap.Release()
	_, trans := raft.NewInmemTransport("a")
	sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	return sink.ID(), snap.Persist(sink)
}

func fill(f *FSM, from, to uint64) {
	for i := from; i <= to; i++ {
		apply(f, i, EncodeAppendBlock(int64(i), [][]byte{tx(f.Store().Group(), fmt.Sprint("k", i), "payload", byte(i))}))
	}
}

// A durable store's snapshot is a reference of a few hundred bytes
// whatever the chain's size; opened through SnapshotStore it is a copy of
// the live store, of the size the meta says, which a follower restores
// and from which it skips the entries it already holds.
func TestReferenceSnapshotInstalls(t *testing.T) {
	src := newRefFSM(t, 2)
	fill(src, 1, 40)
	raw, wrapped := snapStore(t, src)
	id, err := persist(t, src, wrapped, 40)
	if err != nil {
		t.Fatal(err)
	}
	meta, rc, err := raw.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if meta.Size > 1024 {
		t.Fatalf("reference snapshot of 40 blocks is %d bytes", meta.Size)
	}
	// Without ReferenceSnapshots the same store is copied.
	plain := newFSM(t, 2)
	fill(plain, 1, 40)
	praw, pwrapped := snapStore(t, plain)
	pid, err := persist(t, plain, pwrapped, 40)
	if err != nil {
		t.Fatal(err)
	}
	if pm, prc, err := praw.Open(pid); err != nil || pm.Size <= 1024 {
		t.Fatalf("a store without ReferenceSnapshots was not copied: %v, %d bytes", err, pm.Size)
	} else {
		prc.Close()
	}
	fill(src, 41, 45) // the live store moves on after the snapshot

	meta, rc, err = wrapped.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || int64(len(body)) != meta.Size || meta.Index != 40 {
		t.Fatalf("streamed %d bytes (%v), meta size %d index %d", len(body), err, meta.Size, meta.Index)
	}
	dst := newFSM(t, 2)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(body))); err != nil {
		t.Fatal(err)
	}
	if got, _ := dst.Store().AppliedIndex(); got != 45 {
		t.Fatalf("restored store applied to %d, want the live store's 45", got)
	}
	// Raft replays 41..45 after a snapshot at 40: each is skipped.
	for i := uint64(41); i <= 45; i++ {
		if r := apply(dst, i, EncodeAppendBlock(int64(i), [][]byte{tx(2, fmt.Sprint("k", i), "payload", byte(i))})); !errors.Is(r.Err, ErrAlreadyApplied) {
			t.Fatalf("replayed entry %d: %v, want ErrAlreadyApplied", i, r.Err)
		}
	}
	fill(dst, 46, 46)
	fill(src, 46, 46)
	a, _, _ := src.Store().Head()
	b, _, _ := dst.Store().Head()
	if a != b {
		t.Fatalf("heads differ after the install: %+v vs %+v", a, b)
	}
}

// A reference is refused where a copy is needed, and a live store that no
// longer extends the recorded state is never sent in its place.
func TestReferenceSnapshotRefusals(t *testing.T) {
	src := newRefFSM(t, 2)
	fill(src, 1, 10)
	raw, wrapped := snapStore(t, src)
	id, err := persist(t, src, wrapped, 10)
	if err != nil {
		t.Fatal(err)
	}
	_, rc, _ := raw.Open(id)
	ref, _ := io.ReadAll(rc)
	rc.Close()

	dst := newFSM(t, 2)
	fill(dst, 1, 3)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(ref))); !errors.Is(err, ErrSnapshotRef) {
		t.Fatalf("Restore of a reference = %v, want ErrSnapshotRef", err)
	}
	if got, _ := dst.Store().AppliedIndex(); got != 3 {
		t.Fatalf("a refused restore changed the store: applied %d", got)
	}

	// A store behind the reference, or with another chain, cannot stand
	// for it.
	if _, _, err := SnapshotStore(raw, dst).Open(id); !errors.Is(err, ErrRefStale) {
		t.Fatalf("Open against a store behind the reference = %v, want ErrRefStale", err)
	}
	forked := newFSM(t, 2)
	for i := uint64(1); i <= 12; i++ {
		apply(forked, i, EncodeAppendBlock(int64(1000+i), [][]byte{tx(2, "", "other", byte(i))}))
	}
	if _, _, err := SnapshotStore(raw, forked).Open(id); !errors.Is(err, ErrRefStale) {
		t.Fatalf("Open against a forked store = %v, want ErrRefStale", err)
	}
	// A store marked damaged is never sent.
	src.MarkDamaged(fmt.Errorf("%w: test", ErrDamaged))
	if _, _, err := wrapped.Open(id); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open against a damaged store = %v, want ErrDamaged", err)
	}
}

// A damaged head is found before a reference is written.
func TestReferenceSnapshotChecksHead(t *testing.T) {
	f := newRefFSM(t, 1)
	fill(f, 1, 20)
	rawPut(t, f.Store(), bucketBlocks, heightKey(20), flipLast)
	if _, err := f.Snapshot(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("snapshot of a damaged head = %v, want ErrDamaged", err)
	}
}

// A failpoint at each step of a reference snapshot leaves no snapshot
// behind (raft keeps its log), and the next attempt succeeds.
func TestReferenceSnapshotFailpoints(t *testing.T) {
	for _, fp := range []string{"snapshot-after-sync", "snapshot-before-close"} {
		t.Run(fp, func(t *testing.T) {
			f := newRefFSM(t, 1)
			fill(f, 1, 5)
			raw, wrapped := snapStore(t, f)
			setFailpoint(fp, "error")
			_, err := persist(t, f, wrapped, 5)
			setFailpoint(fp, "")
			if !errors.Is(err, errFailpoint) {
				t.Fatalf("persist with %s = %v", fp, err)
			}
			if metas, _ := raw.List(); len(metas) != 0 {
				t.Fatalf("a failed snapshot left %d snapshots", len(metas))
			}
			if _, err := persist(t, f, wrapped, 5); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A failpoint at each step of Restore leaves a store that opens, verifies
// and is one of the two states: the old one or the snapshot's.
func TestRestoreFailpoints(t *testing.T) {
	src := newFSM(t, 1)
	fill(src, 1, 30)
	snap, _ := src.FullSnapshot()
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	for _, fp := range []string{"restore-after-copy", "restore-before-swap", "restore-after-swap"} {
		t.Run(fp, func(t *testing.T) {
			dst := newFSM(t, 1)
			fill(dst, 1, 4)
			setFailpoint(fp, "error")
			err := dst.Restore(io.NopCloser(bytes.NewReader(s.Bytes())))
			setFailpoint(fp, "")
			if !errors.Is(err, errFailpoint) {
				t.Fatalf("restore with %s = %v", fp, err)
			}
			// What a restart finds on disk.
			path := dst.Store().Path()
			dst.Store().Close()
			re, err := OpenStore(path, 1, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer re.Close()
			applied, _ := re.AppliedIndex()
			if applied != 4 && applied != 30 {
				t.Fatalf("after %s the store is applied to %d, neither the old 4 nor the snapshot's 30", fp, applied)
			}
			if _, err := re.Verify(t.Context(), VerifyOptions{}); err != nil {
				t.Fatalf("after %s: %v", fp, err)
			}
		})
	}
}
