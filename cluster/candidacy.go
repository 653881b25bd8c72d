package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// A replica whose chain alarm is raised must not lead its group. Raft
// itself has no way to keep a voter from standing in an election, so the
// replica's own transport does (raftTransport): while the alarm is raised
//
//   - it answers raft's TimeoutNow (the "stand now" of a leadership
//     transfer) with ErrChainCorrupt, and leaders hand leadership only to
//     voters gossip shows alive and without an alarm (handOver);
//   - its requests for votes and pre-votes are not sent (they fail at
//     once), so it gathers no votes; with pre-vote (raft's default) it
//     does not even raise its term, so it disturbs no one.
//
// It keeps its vote and goes on replicating: its raft log is not damaged,
// so the group keeps its quorum and its fault tolerance. One exception
// keeps the group live: raft elects only a voter whose log is at least as
// complete as a majority's, so when the damaged replica holds entries the
// healthy voters lack (the leader died before they had them), none of
// them can win without it. After standAfter election timeouts with no
// leader it therefore stands after all; should it win (then, or in an
// election begun before the alarm was raised), it hands leadership over
// at once (refuseLeadership), once the healthy voter it hands to has
// caught up. It serves nothing meanwhile.

// standAfter is how many election timeouts a damaged replica waits
// without a leader before it stands for election itself.
const standAfter = 8

// raftTransport is the transport raft runs on: the pipelineTransport,
// with this node's candidacy passed through its transfer and stand
// checks (see above), and candidates ahead of a stale configuration let
// through (stalevote.go).
type raftTransport struct {
	pipelineTransport
	rpcs    chan raft.RPC
	stand   func() error
	hear    func(voteAsk) bool
	localID raft.ServerID
}

// newRaftTransport relays t's incoming RPCs to raft until stop closes,
// answering a TimeoutNow with transfer's error instead when it returns
// one; requests for votes fail unsent with stand's error when it returns
// one. A request for this node's vote or pre-vote from a candidate hear
// accepts (Node.voteFrom) skips raft's configuration check.
func newRaftTransport(t *raft.NetworkTransport, acks *appendAcks, localID raft.ServerID, transfer, stand func() error, hear func(voteAsk) bool, stop <-chan struct{}) *raftTransport {
	rt := &raftTransport{pipelineTransport: pipelineTransport{t, acks}, rpcs: make(chan raft.RPC), stand: stand, hear: hear, localID: localID}
	go rt.relay(t.Consumer(), transfer, stop)
	return rt
}

// AppendEntries sends an append (or a heartbeat) to target and records
// it in the transport's appendAcks when target accepts it.
func (t *raftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := time.Now()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Success && resp.Term == args.Term {
		t.acks.record(id, args.Term, sent)
	}
	return err
}

// RequestVote asks target for its vote, unless stand forbids standing.
func (t *raftTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.stand(); err != nil {
		return err
	}
	return t.NetworkTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote asks target for its pre-vote, unless stand forbids
// standing.
func (t *raftTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := t.stand(); err != nil {
		return err
	}
	return t.NetworkTransport.RequestPreVote(id, target, args, resp)
}

func (t *raftTransport) relay(in <-chan raft.RPC, refuse func() error, stop <-chan struct{}) {
	for {
		var rpc raft.RPC
		select {
		case rpc = <-in:
		case <-stop:
			return
		}
		switch cmd := rpc.Command.(type) {
		case *raft.TimeoutNowRequest:
			if err := refuse(); err != nil {
				rpc.Respond(nil, err)
				continue
			}
		case *raft.RequestPreVoteRequest:
			if t.hear(voteAsk{Candidate: string(cmd.ID), Term: cmd.Term, LastIndex: cmd.LastLogIndex, LastTerm: cmd.LastLogTerm, Pre: true}) {
				t.grantPreVote(rpc, cmd)
				continue
			}
		case *raft.RequestVoteRequest:
			if t.hear(voteAsk{Candidate: string(cmd.ID), Term: cmd.Term, LastIndex: cmd.LastLogIndex, LastTerm: cmd.LastLogTerm}) {
				cmd.ID = nil // raft skips its configuration check
			}
		}
		select {
		case t.rpcs <- rpc:
		case <-stop:
			return
		}
	}
}

// Consumer returns the incoming RPCs raft is to handle.
func (t *raftTransport) Consumer() <-chan raft.RPC { return t.rpcs }

// refuseTransfer is the transfer function of this node's raftTransport:
// ErrChainCorrupt while the alarm is raised.
func (n *Node) refuseTransfer() error {
	if a := n.chainAlarm(); a != nil {
		n.logger.Warn("refusing leadership handed to a damaged replica", "height", a.Height, "what", a.What)
		return ErrChainCorrupt
	}
	return nil
}

// refuseStanding is the stand function of this node's raftTransport:
// ErrChainCorrupt while the alarm is raised, unless the group has had no
// leader this node heard from for standAfter election timeouts (since
// the alarm was raised, and since the node started).
func (n *Node) refuseStanding() error {
	a := n.chainAlarm()
	if a == nil {
		return nil
	}
	r := n.raftUp.Load()
	if r == nil {
		return ErrChainCorrupt
	}
	since := n.started
	for _, t := range []time.Time{r.LastContact(), a.Found} {
		if t.After(since) {
			since = t
		}
	}
	if time.Since(since) >= standAfter*n.cfg.ElectionTimeout {
		n.logger.Warn("no leader for a while; a damaged replica stands for election, to hand leadership over if it wins", "no_leader_for", time.Since(since).Round(time.Millisecond))
		return nil
	}
	return ErrChainCorrupt
}

// handOver starts a leadership transfer to a voter of the group that
// gossip shows alive and without a chain alarm (raft's own choice is the
// most up-to-date voter, which may be a damaged one that refuses). With
// no such voter it leaves the choice to raft.
func (n *Node) handOver() raft.Future {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil || n.gossip == nil {
		return n.raft.LeadershipTransfer()
	}
	view := n.gossip.view()
	alarmed := false
	var healthy []raft.Server
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == n.info.ID || s.Suffrage != raft.Voter {
			continue
		}
		m, ok := view[string(s.ID)]
		if ok && m.meta.Corrupt != "" {
			alarmed = true
			continue
		}
		if ok && m.state == stateAlive {
			healthy = append(healthy, s)
		}
	}
	if !alarmed || len(healthy) == 0 {
		return n.raft.LeadershipTransfer()
	}
	return n.raft.LeadershipTransferToServer(healthy[0].ID, healthy[0].Address)
}

// alarmOf returns the chain alarm gossip shows for node id ("" if none).
func (n *Node) alarmOf(id string) string {
	if n.gossip == nil {
		return ""
	}
	if m, ok := n.gossip.view()[id]; ok {
		return m.meta.Corrupt
	}
	return ""
}
