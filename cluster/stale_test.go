package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStaleReadAfterUncleanStopNeverGoesBack: a replica whose chain
// store is written without fsync (SyncFSM off) and whose last stop was
// not clean rebuilds its chain store from raft; until it holds what it
// held before, its stale reads answer ErrCatchingUp instead of an older
// head. Found by the fault harness (integration/faults): after SIGKILL and
// restart, a node's stale reads went from log size 6430 back to 0.
func TestStaleReadAfterUncleanStopNeverGoesBack(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	base.SyncFSM = false
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base})
	ld := waitLeader(t, l)
	f := 0
	for i, n := range l.Nodes {
		if n != ld {
			f = i
			break
		}
	}
	var last Receipt
	for i := range 20 {
		last = submit(t, ld, 0, "", "tx "+string(rune('a'+i)))
	}
	ctx := context.Background()
	waitUntil(t, "the follower to hold every write", 30*time.Second, func() bool {
		h, _, err := l.Nodes[f].Head(ctx, 0, Stale)
		return err == nil && h.LogSize > last.Index
	})
	before, _, _ := l.Nodes[f].Head(ctx, 0, Stale)

	// Every node stops; the follower's stop is made a machine crash (no
	// clean marker, another boot), and it starts alone: no leader tells
	// it what is committed, so its rebuilt store cannot catch up.
	for i := range l.Nodes {
		if err := l.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{cleanMarker, bootMarker} {
		if err := os.Remove(filepath.Join(l.configs[f].DataDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Start(f); err != nil {
		t.Fatal(err)
	}
	h, _, err := l.Nodes[f].Head(ctx, 0, Stale)
	if err == nil && h.LogSize < before.LogSize {
		t.Fatalf("a stale read after the unclean restart went back from log size %d to %d", before.LogSize, h.LogSize)
	}
	if err != nil && !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("stale read while catching up: %v, want ErrCatchingUp", err)
	}

	// With the others back, it catches up and serves stale reads again.
	for i := range l.Nodes {
		if i != f {
			if err := l.Start(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, "stale reads served again, at least as new as before", 2*time.Minute, func() bool {
		h, _, err := l.Nodes[f].Head(ctx, 0, Stale)
		return err == nil && h.LogSize >= before.LogSize
	})
}

// TestDefaultReadCatchesUpOncePerTerm: a leader serves default reads only
// after a barrier in its current term has applied everything earlier
// leaders committed. Without it, a leader elected after a restart served
// default reads from a store still re-applying the log, and the fault
// harness's linearizability check failed.
//
// The check needs a read that one leader served in one term: on a loaded
// machine leadership may move while the read runs (then the read is
// forwarded, or its term is over), and the test reads again through the
// leader of the moment.
func TestDefaultReadCatchesUpOncePerTerm(t *testing.T) {
	l := startLocal(t, 1, 3)
	submit(t, l.Nodes[0], 0, "", "before the read")
	tries := 0
	waitUntil(t, "a default read served by a leader that kept its term", 2*time.Minute, func() bool {
		ld, ok := l.Leader(0)
		if !ok {
			return false
		}
		tries++
		term := ld.raft.CurrentTerm()
		ld.barrierTerm.Store(0) // as on a leader that has not yet read in this term
		_, _, err := ld.Head(context.Background(), 0, Default)
		// A node that leads in the same term after the read as before
		// led all along: once a leader steps down, it leads only in a
		// later term.
		kept := ld.IsLeader() && ld.raft.CurrentTerm() == term
		switch {
		case !kept:
			t.Logf("try %d: leadership moved during the read (%v); reading again", tries, err)
			return false
		case err != nil:
			t.Fatal(err)
		}
		if got := ld.barrierTerm.Load(); got != term {
			t.Fatalf("after a default read the caught-up term is %d, want the current term %d", got, term)
		}
		return true
	})
}

// TestStoppedStateMachineIsReported: a replica whose state machine stopped
// on a storage failure keeps following raft, but its status names the
// failure and it serves no stale read (ErrStopped: 503, not 500). In a
// disk-full try such a replica served a frozen chain and reported nothing.
// (Its store is closed here, so it cannot resume: see
// integration/faults.TestDiskFull for a stop that does.)
func TestStoppedStateMachineIsReported(t *testing.T) {
	l := startLocal(t, 1, 3)
	ld := waitLeader(t, l)
	var f *Node
	for _, n := range l.Nodes {
		if n != ld {
			f = n
			break
		}
	}
	if err := f.store.Close(); err != nil { // every later apply fails
		t.Fatal(err)
	}
	submit(t, ld, 0, "", "applied everywhere but on f")
	waitUntil(t, "f's state machine to stop", time.Minute, func() bool { return f.fsm.Err() != nil })
	if st := f.localStatus(); !strings.Contains(st.Error, "state machine stopped") {
		t.Fatalf("status error %q does not report the stopped state machine", st.Error)
	}
	if _, _, err := f.Head(context.Background(), 0, Stale); !errors.Is(err, ErrStopped) {
		t.Fatalf("stale read on a stopped replica: %v, want ErrStopped", err)
	}
}

// TestReadThroughFollowerWhileLeaderDown: a read forwarded to a leader
// that has just died is sent again to the next leader; if none answers in
// time it fails with ErrNoLeader (503), never with the transport's error,
// which the API answered 500 ("rpc to ...: connection refused"; found by
// the fault suite once it failed on every 500, 30 such reads in one run).
func TestReadThroughFollowerWhileLeaderDown(t *testing.T) {
	l := startLocal(t, 1, 3)
	ld := waitLeader(t, l)
	submit(t, ld, 0, "", "before the leader dies")
	var f *Node
	for _, n := range l.Nodes {
		if n != ld {
			f = n
			break
		}
	}
	if err := ld.Close(); err != nil {
		t.Fatal(err)
	}
	// Read through f until it has a new leader and the read succeeds.
	deadline := time.Now().Add(time.Minute)
	for reads := 1; ; reads++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		h, _, err := f.Head(ctx, 0, Linearizable)
		cancel()
		if err == nil && h.LogSize >= 1 {
			t.Logf("read %d served by the new leader", reads)
			return
		}
		if err != nil && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrNotLeader) {
			t.Fatalf("read %d through a follower while the leader is down: %v, want ErrNoLeader", reads, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read served in a minute: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
