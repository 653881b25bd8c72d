package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// leaderWatch turns raft's leader observations into a channel that closes
// at the next change of the leader this node sees (another node, or none
// when contact with the leader lapsed and raft cleared it). The zero value
// is ready to use; it is safe for concurrent use.
type leaderWatch struct {
	mu      sync.Mutex
	changed chan struct{}
}

// next returns a channel closed at the first leader change after the call.
// Take it before reading the leader, so a change in between is not missed.
func (w *leaderWatch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

// fire wakes everyone waiting on a channel from next.
func (w *leaderWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// watchLeader feeds raft's leader observations to n.leaders until stop.
// Raft reports a change of leader, and also clears it (and reports that)
// when a follower's heartbeat timeout passes without contact, voter or
// not, so a stale view of the leader is observed as a change too.
func (n *Node) watchLeader() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			n.leaders.fire()
		case <-n.stop:
			return
		}
	}
}

// hopTimeout bounds one forwarded request to the group leader: a few
// election timeouts (and at least 2 s), so a leader that answers no more
// is given up well before the client's own deadline even if no new leader
// is observed. The client's deadline still bounds the whole request.
func (n *Node) hopTimeout() time.Duration {
	return max(3*n.cfg.ElectionTimeout, 3*n.cfg.HeartbeatTimeout, 2*time.Second)
}

// callLeader sends one request to the group leader as this node sees it
// and returns its answer. It abandons the request with errLeaderMoved as
// soon as raft reports another leader or none, and with errHopTimeout
// after hopTimeout; both leave the outcome unknown, so the caller may only
// send the same request again (a write with the same bytes, which the
// state machine de-duplicates). ErrNoLeader if this node knows no leader.
func (n *Node) callLeader(ctx context.Context, m method, in, out any) error {
	moved := n.leaders.next()
	leader, ok := n.Leader()
	if !ok {
		return fmt.Errorf("%w: group %d", ErrNoLeader, n.group)
	}
	hop, cancelHop := context.WithTimeoutCause(ctx, n.hopTimeout(), errHopTimeout)
	defer cancelHop()
	hop, abandon := context.WithCancelCause(hop)
	defer abandon(nil)
	go func() {
		for {
			select {
			case <-moved:
			case <-hop.Done():
				return
			}
			// Raft names the new leader before its observation arrives:
			// the request may already have gone to it.
			moved = n.leaders.next()
			if now, ok := n.Leader(); !ok || now.ID != leader.ID {
				abandon(errLeaderMoved)
				return
			}
		}
	}()
	err := n.client.call(hop, leader.Addr, m, in, out)
	if err == nil || ctx.Err() != nil || hop.Err() == nil {
		return err
	}
	if re := (*remoteError)(nil); errors.As(err, &re) {
		return err // a real answer that raced the abandonment
	}
	cause := context.Cause(hop)
	n.logger.Info("forwarded request abandoned, sending it again", "leader", leader.ID, "reason", cause)
	return fmt.Errorf("%w: request to %s", cause, leader.Addr)
}
