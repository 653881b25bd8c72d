package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRemovedLiveLeaderIsAddedBack: a live node taken out of its group's
// configuration while it leads (qledger cluster remove, or a removal its
// earlier incarnation asked for that a partition delayed) is still in
// gossip, so the reconciler adds it back; it must then catch up and vote
// again. With raft's default (shut down on removing itself) its raft
// stopped inside the running process and it never came back.
func TestRemovedLiveLeaderIsAddedBack(t *testing.T) {
	l := groupOfThree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	old := waitLeader(t, l)
	id := old.Info().ID
	submit(t, old, 0, "", "before")
	if err := old.Remove(ctx, id); err != nil {
		t.Fatalf("removing the leader: %v", err)
	}
	waitUntil(t, "the removed leader to be a voter again", 2*time.Minute, func() bool {
		return suffrageOf(l, 0, id) == "voter"
	})
	ld := waitLeader(t, l)
	r := submit(t, ld, 0, "", "after")
	waitUntil(t, "the removed leader to apply the write made after", 2*time.Minute, func() bool {
		h, ok, err := old.store.Head()
		return err == nil && ok && h.Height >= r.Height
	})
}

// TestRemovalForAnEndedIncarnationIsRefused: a removal a leaving node
// asked for, held back until the node had started again, does not take
// the new incarnation out of its group; one for the running incarnation
// does.
func TestRemovalForAnEndedIncarnationIsRefused(t *testing.T) {
	l := groupOfThree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ld := waitLeader(t, l)
	f := l.Nodes[follower(l)]
	id, since := f.Info().ID, f.started.UnixNano()
	waitUntil(t, "the leader to see the follower's incarnation in gossip", time.Minute, func() bool {
		return ld.gossip.view()[id].meta.Since == since
	})
	err := ld.remove(ctx, RemoveRequest{ID: id, Since: since - 1})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "has ended") {
		t.Fatalf("a removal for an earlier incarnation: %v; want it refused as ended", err)
	}
	if s := suffrageOf(l, 0, id); s != "voter" {
		t.Fatalf("after the refused removal the follower is %q, want still a voter", s)
	}
	if err := ld.remove(ctx, RemoveRequest{ID: id, Since: since}); err != nil {
		t.Fatalf("a removal for the running incarnation: %v", err)
	}
	// The reconciler adds the live node back as a non-voter at once, and
	// promotes it only after the stabilization time.
	if s := suffrageOf(l, 0, id); s == "voter" {
		t.Fatalf("after its removal the follower is still a voter")
	}
}

// groupOfThree starts one group of three voters with loopback timing.
func groupOfThree(t *testing.T) *Local {
	t.Helper()
	base := DefaultConfig()
	base.LoopbackTiming()
	return startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Base: &base})
}
