//go:build linux

package fsm

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// limitFileSize caps the size of every file this process writes at n
// bytes, as a full disk would: a write or truncate past it fails with
// EFBIG (SIGXFSZ, which would kill the process, is ignored meanwhile).
// The returned function lifts the cap.
func limitFileSize(t *testing.T, n uint64) func() {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("no RLIMIT_FSIZE: %v", err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: old.Max}); err != nil {
		signal.Reset(syscall.SIGXFSZ)
		t.Skipf("cannot set RLIMIT_FSIZE: %v", err)
	}
	lifted := false
	lift := func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatalf("restore RLIMIT_FSIZE: %v", err)
			}
			signal.Reset(syscall.SIGXFSZ)
		}
	}
	t.Cleanup(lift)
	return lift
}

// TestResumeAfterStoreFull fills the store's disk (a file size cap) while
// entries arrive: the FSM must stop on the first failed write, answer
// every later entry with ErrStopped, refuse snapshots, and stay stopped
// while the disk is full; once space returns, Resume must re-apply the
// skipped entries from the raft log, so that the store ends identical to
// a replica that never stopped and later entries follow on. The old FSM
// stayed stopped until the node restarted.
func TestResumeAfterStoreFull(t *testing.T) {
	f, ref := newFSM(t, 1), newFSM(t, 1)
	logs := raft.NewInmemStore()
	payload := strings.Repeat("x", 48<<10) // every block grows the file
	var index uint64
	next := func() *raft.Log {
		index++
		l := &raft.Log{Index: index, Type: raft.LogCommand, Data: EncodeAppendBlock(int64(index), [][]byte{tx(1, fmt.Sprint("k", index), payload, 0)})}
		if err := logs.StoreLog(l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	for range 5 {
		if r := f.Apply(next()).(*ApplyResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	st, err := os.Stat(f.Store().path)
	if err != nil {
		t.Fatal(err)
	}
	lift := limitFileSize(t, uint64(st.Size()))
	stoppedAt := uint64(0)
	for range 40 {
		r := f.Apply(next()).(*ApplyResult)
		switch {
		case r.Err != nil && !errors.Is(r.Err, ErrStopped):
			lift()
			t.Fatalf("entry %d: %v, want an error wrapping ErrStopped", r.Index, r.Err)
		case r.Err != nil && stoppedAt == 0:
			stoppedAt = r.Index
		case r.Err == nil && stoppedAt != 0:
			lift()
			t.Fatalf("entry %d applied after the FSM stopped at %d", r.Index, stoppedAt)
		}
	}
	if stoppedAt == 0 {
		lift()
		t.Fatal("no entry failed with the store's file capped at its size")
	}
	if snap, err := f.Snapshot(); err == nil {
		snap.Release()
		lift()
		t.Fatal("a stopped FSM took a snapshot")
	}
	if err := f.Resume(logs); err == nil || f.Err() == nil {
		lift()
		t.Fatalf("resumed while the disk is still full (%v)", err)
	}
	lift()

	if err := f.Resume(logs); err != nil {
		t.Fatalf("resume once space returned: %v", err)
	}
	if err := f.Err(); err != nil {
		t.Fatalf("still stopped after Resume: %v", err)
	}
	for range 3 {
		if r := f.Apply(next()).(*ApplyResult); r.Err != nil {
			t.Fatalf("entry %d after resume: %v", r.Index, r.Err)
		}
	}
	// The reference applies the same log with no fault (afterwards: the
	// file cap is process-wide).
	for i := uint64(1); i <= index; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if r := ref.Apply(&l).(*ApplyResult); r.Err != nil {
			t.Fatalf("reference replica: %v", r.Err)
		}
	}
	got, _, _ := f.Store().Head()
	want, _, _ := ref.Store().Head()
	if got != want {
		t.Fatalf("resumed replica's head %d %x, the replica that never stopped has %d %x", got.Height, got.Hash(), want.Height, want.Hash())
	}
	if a, _ := f.Store().AppliedIndex(); a != index {
		t.Fatalf("applied index %d, want %d", a, index)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("snapshot after resume: %v", err)
	}
	snap.Release()
	t.Logf("stopped at entry %d of %d; resumed and caught up", stoppedAt, index)
}
