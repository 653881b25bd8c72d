package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestAppendAcksConfirmAFreshMajority: only appends of the leader's term
// sent at or after the read began count, and a majority of the voters
// (the leader among them) must have accepted one. Answers to appends sent
// before the read began — what a paused leader finds waiting when it
// resumes — confirm nothing.
func TestAppendAcksConfirmAFreshMajority(t *testing.T) {
	since := time.Now()
	before, after := since.Add(-time.Millisecond), since.Add(time.Millisecond)
	three := []raft.ServerID{"a", "b", "c"}
	five := []raft.ServerID{"a", "b", "c", "d", "e"}
	cases := []struct {
		name   string
		voters []raft.ServerID
		record func(a *appendAcks)
		want   bool
	}{
		{"no answer", three, func(a *appendAcks) {}, false},
		{"answers to appends sent before the read", three, func(a *appendAcks) {
			a.record("b", 7, before)
			a.record("c", 7, before)
		}, false},
		{"a fresh answer of an older term", three, func(a *appendAcks) { a.record("b", 6, after) }, false},
		{"one fresh answer of three", three, func(a *appendAcks) { a.record("b", 7, after) }, true},
		{"sent the instant the read began", three, func(a *appendAcks) { a.record("c", 7, since) }, true},
		{"one fresh answer of five", five, func(a *appendAcks) {
			a.record("b", 7, after)
			a.record("c", 7, before)
		}, false},
		{"two fresh answers of five", five, func(a *appendAcks) {
			a.record("b", 7, after)
			a.record("e", 7, after)
		}, true},
		{"an older answer arriving late does not replace a newer one", three, func(a *appendAcks) {
			a.record("b", 7, after)
			a.record("b", 7, before)
		}, true},
		{"the leader is not a voter", []raft.ServerID{"b", "c", "d"}, func(a *appendAcks) { a.record("b", 7, after) }, false},
	}
	for _, c := range cases {
		a := newAppendAcks()
		c.record(a)
		if got, _ := a.confirmed(c.voters, "a", 7, since); got != c.want {
			t.Errorf("%s: confirmed %v, want %v", c.name, got, c.want)
		}
	}

	a := newAppendAcks()
	_, changed := a.confirmed(three, "a", 7, since)
	a.record("b", 7, after)
	select {
	case <-changed:
	default:
		t.Fatal("a record did not wake a waiting read")
	}
	var none *appendAcks
	none.record("b", 7, after) // a transport without a record: no panic
}

// TestLeadershipConfirmedOnlyByAppendsAfterTheRead: on a live group the
// leader confirms a read at once (its peers accept its heartbeats), a
// follower never does, and no leader confirms a read that "began" after
// every append it can have sent: it gives up after an election timeout
// instead of serving.
func TestLeadershipConfirmedOnlyByAppendsAfterTheRead(t *testing.T) {
	l := startLocal(t, 1, 3)
	submit(t, l.Nodes[0], 0, "", "a write")
	var ld *Node
	waitUntil(t, "a leader that confirms a read and keeps its term", 2*time.Minute, func() bool {
		n, ok := l.Leader(0)
		if !ok {
			return false
		}
		term := n.raft.CurrentTerm()
		err := n.confirmLeadership(time.Now())
		if !n.IsLeader() || n.raft.CurrentTerm() != term {
			return false // leadership moved meanwhile; ask the next leader
		}
		if err != nil {
			t.Fatalf("the leader could not confirm a read: %v", err)
		}
		ld = n
		return true
	})
	if err := ld.confirmLeadership(time.Now().Add(time.Hour)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a read no append can confirm: got %v, want ErrNotLeader", err)
	}
	for _, n := range l.Nodes {
		if n != ld && !n.IsLeader() {
			if err := n.confirmLeadership(time.Now()); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("a follower confirmed its leadership: %v", err)
			}
		}
	}
	if _, _, err := ld.Head(context.Background(), 0, Default); err != nil && ld.IsLeader() {
		t.Fatalf("a default read on the leader: %v", err)
	}
}
