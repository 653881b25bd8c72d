package cluster

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// A voter that lags behind a configuration change can leave its group
// without a leader for good. Raft (v1.7.3, requestVote and
// requestPreVote) refuses the vote and the pre-vote of a candidate that
// is not a voter in the receiver's latest configuration, a check the Raft
// paper does not make: it keeps servers removed from the group from
// disturbing it. But a change is committed by a majority, so a voter may
// not yet hold it when the leader fails:
//
//   - voters A (leader) and B, a third having left, and a standby S; A
//     promotes S, the change is committed by A and S while B still
//     replicates older entries; A dies;
//   - S holds the newer log and the configuration {A, B, S}: it needs B's
//     vote, and B refuses it, S being a non-voter in B's configuration;
//   - B's configuration has two voters, A and B: it needs A's vote, and A
//     is gone. Only a leader could bring B the change, and none can be
//     elected.
//
// TestChurn's schedule (a voter leaves, a standby is promoted, the leader
// is killed) can reach this state on a loaded machine; the stall is
// permanent, not a slow election. TestVoterBehindAPromotionElectsThePromoted
// builds it.
//
// So this node's transport (raftTransport) lets such a candidate through:
// when this node knows no leader and a candidate's log is strictly more
// up to date than its own (a later last term, or the same term and a
// later index), the candidate holds entries this node lacks, which may
// make it a voter. Its pre-vote is then granted here, and its vote
// request goes to raft without the candidate's ID, so that raft makes
// every check but the configuration's (term, one vote per term, the log
// at least as up to date). Raft's safety does not rest on the check
// skipped: an election needs a majority of the candidate's own
// configuration, with logs no more complete than its own.
//
// A server removed from the group is still refused: it receives no entry
// after its removal, so a voter that holds the removal has a log at least
// as long as its own, and a voter that does not hold it still counts it a
// voter (if the removed server holds its removal, it does not stand).

// voteAsk is a request for this node's vote or pre-vote, as voteFrom
// judges it.
type voteAsk struct {
	Candidate           string // its node ID
	Term                uint64 // the term it asks in
	LastIndex, LastTerm uint64 // its last log entry
	Pre                 bool   // a pre-vote
}

// voteFrom reports whether this node should hear candidate a whatever
// raft's latest configuration says of it: this node knows no leader, a's
// term is not behind its own, and a's log is strictly more up to date
// than the one this node holds.
func (n *Node) voteFrom(a voteAsk) bool {
	r := n.raftUp.Load()
	if r == nil {
		return false
	}
	if addr, _ := r.LeaderWithID(); addr != "" || a.Term < r.CurrentTerm() {
		return false
	}
	idx, err := n.logStore.LastIndex()
	if err != nil || idx == 0 {
		return false
	}
	var last raft.Log
	if err := n.logStore.GetLog(idx, &last); err != nil {
		return false
	}
	if a.LastTerm < last.Term || a.LastTerm == last.Term && a.LastIndex <= last.Index {
		return false
	}
	n.logger.Info("a candidate ahead of this node's log asks for its vote; raft's configuration check is skipped",
		"candidate", shortID(a.Candidate), "pre_vote", a.Pre, "term", a.Term, "its_last", fmt.Sprintf("%d/%d", a.LastTerm, a.LastIndex), "our_last", fmt.Sprintf("%d/%d", last.Term, last.Index))
	return true
}

// grantPreVote answers a pre-vote request that voteFrom lets through: a
// pre-vote changes nothing on the voter, so it is answered here, as raft
// answers one it grants.
func (t *raftTransport) grantPreVote(rpc raft.RPC, req *raft.RequestPreVoteRequest) {
	resp := &raft.RequestPreVoteResponse{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(t.localID), Addr: t.EncodePeer(t.localID, t.LocalAddr())},
		Term:      req.Term,
		Granted:   true,
	}
	rpc.Respond(resp, nil)
}
