package cluster

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A default read is served by the leader once it has confirmed that it
// still leads. raft's VerifyLeader alone does not confirm that: it counts
// any successful append answer that reaches the leader after the check
// began, including answers to appends sent before it began. A leader
// paused (SIGSTOP, a long GC or VM stall) with appends in flight finds
// their answers waiting when it resumes; they satisfy VerifyLeader,
// although a new leader has been elected and has acknowledged writes in
// the meantime, and the read is served stale. The fault suite caught
// exactly that (pause-leader: a default read on the resumed old leader
// missed a write the new leader had acknowledged 12 ms before the read
// was sent).
//
// So the leader also counts its own evidence (appendAcks): for each peer,
// when the newest append it accepted was sent and in which term. A read
// that began at t is confirmed once a majority of the voters, counting
// the leader, accepted an append of the leader's current term sent at or
// after t. Each such peer was then still in that term, so it had voted
// for no later leader before t; a majority of them leaves no majority for
// one. Answers that were on their way before t do not count.

// appendAcks records, per peer, the newest append (plain, heartbeat or
// pipelined) the peer accepted: its term and when it was sent.
type appendAcks struct {
	mu      sync.Mutex
	last    map[raft.ServerID]appendAck
	changed chan struct{} // closed and replaced at every record
}

type appendAck struct {
	term uint64
	sent time.Time
}

func newAppendAcks() *appendAcks {
	return &appendAcks{last: map[raft.ServerID]appendAck{}, changed: make(chan struct{})}
}

// record notes that peer id accepted an append of term sent at sent. A
// nil appendAcks records nothing.
func (a *appendAcks) record(id raft.ServerID, term uint64, sent time.Time) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.last[id]; ok && cur.sent.After(sent) {
		return
	}
	a.last[id] = appendAck{term: term, sent: sent}
	close(a.changed)
	a.changed = make(chan struct{})
}

// confirmed reports whether a majority of voters, counting self (if it is
// one) without evidence, accepted an append of term sent at or after
// since; and a channel closed at the next record.
func (a *appendAcks) confirmed(voters []raft.ServerID, self raft.ServerID, term uint64, since time.Time) (bool, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range voters {
		ack, ok := a.last[v]
		if v == self || (ok && ack.term == term && !ack.sent.Before(since)) {
			n++
		}
	}
	return 2*n > len(voters), a.changed
}

// confirmLeadership waits until this node's appends confirm it led its
// group at some moment after since (see above), at most an election
// timeout; ErrNotLeader if it stops leading or the time runs out.
func (n *Node) confirmLeadership(since time.Time) error {
	term := n.raft.CurrentTerm()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	var voters []raft.ServerID
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s.ID)
		}
	}
	timeout := time.NewTimer(n.cfg.ElectionTimeout)
	defer timeout.Stop()
	for {
		ok, changed := n.acks.confirmed(voters, raft.ServerID(n.info.ID), term, since)
		if ok {
			return nil
		}
		if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
			return ErrNotLeader
		}
		select {
		case <-changed:
		case <-timeout.C:
			return ErrNotLeader
		case <-n.stop:
			return ErrShutdown
		}
	}
}
