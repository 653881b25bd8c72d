package cluster

import (
	"time"
)

// resumeEvery is how often a replica whose state machine a storage
// failure stopped tries to resume it.
const resumeEvery = 500 * time.Millisecond

// watchStore resumes the state machine after a storage failure (a full
// disk) once the store takes writes again: fsm.Resume re-applies, from
// the raft log, what raft handed over meanwhile, so the replica catches
// up in place, without a restart, and ends exactly as if it had never
// stopped. While stopped it hands leadership to another voter: a leader
// that cannot apply answers every write with an unknown outcome and
// serves no read.
func (n *Node) watchStore() {
	tick := time.NewTicker(resumeEvery)
	defer tick.Stop()
	var since time.Time // when this stop was first seen; zero while running
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		stopped := n.fsm.Err()
		if stopped == nil {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
			n.logger.Warn("state machine stopped on a storage failure; retrying until the store takes writes again", "error", stopped)
		}
		if n.IsLeader() {
			if err := n.handOver().Error(); err != nil {
				n.logger.Warn("stopped state machine leads its group and could not hand over leadership", "error", err)
			}
		}
		if err := n.fsm.Resume(n.logStore); err != nil {
			n.logger.Debug("state machine not resumed yet", "error", err)
			continue
		}
		n.logger.Info("state machine resumed", "stopped_for", time.Since(since).Round(time.Millisecond))
		since = time.Time{}
	}
}
