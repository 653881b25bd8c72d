package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// TransferLeadershipTo hands the group's leadership to the voter to, or
// to any up-to-date voter if to is empty, and returns the new leader's ID
// once this node has heard from it (or "" if ctx ends first). It must run
// on the group leader: elsewhere it fails with ErrNotLeader, and a to that
// is not a voter of the group is ErrNotFound; a to whose chain alarm
// gossip shows is ErrChainCorrupt (a damaged replica cannot lead). With to
// empty, a voter without an alarm is chosen.
func (n *Node) TransferLeadershipTo(ctx context.Context, to string) (string, error) {
	if !n.IsLeader() {
		return "", fmt.Errorf("%w: node %s does not lead group %d", ErrNotLeader, n.id.Short(), n.group)
	}
	if to == n.info.ID {
		return to, nil // already the leader
	}
	f, err := n.transferFuture(to)
	if err != nil {
		return "", err
	}
	if err := f.Error(); err != nil {
		return "", n.convert(err)
	}
	for {
		if l, ok := n.Leader(); ok && l.ID != n.info.ID {
			return l.ID, nil
		}
		select {
		case <-ctx.Done():
			return "", nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// transferFuture starts the transfer to the voter to, or to any voter.
func (n *Node) transferFuture(to string) (raft.Future, error) {
	if to == "" {
		return n.handOver(), nil
	}
	if a := n.alarmOf(to); a != "" {
		return nil, fmt.Errorf("%w: %.12s has its chain alarm raised (%s) and cannot lead", ErrChainCorrupt, to, a)
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, n.convert(err)
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == to && s.Suffrage == raft.Voter {
			return n.raft.LeadershipTransferToServer(s.ID, s.Address), nil
		}
	}
	return nil, fmt.Errorf("%w: %.12s is not a voter of group %d", ErrNotFound, to, n.group)
}
