package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// pipelineTransport is raft's network transport with every append
// pipeline wrapped in a closingPipeline (see there), whose accepted
// appends are recorded in acks (nil: not recorded). Everything else is
// the embedded transport's.
type pipelineTransport struct {
	*raft.NetworkTransport
	acks *appendAcks
}

// AppendEntriesPipeline returns the transport's pipeline to target,
// wrapped so that a failed append cannot wedge replication.
func (t pipelineTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	c := newClosingPipeline(p)
	c.accepted = func(f raft.AppendFuture) { t.acks.record(id, f.Request().Term, f.Start()) }
	return c, nil
}

// closingPipeline closes its pipeline as soon as it hands raft a failed
// append (an error, or a follower that refused: its log could not be
// stored, say on a full disk, or did not match).
//
// Without it replication to that follower can stop for good in
// hashicorp/raft v1.7.3: raft's response reader returns at the first
// failed append and stops reading responses, so the transport's reader
// blocks handing over the next one, the in-flight queue fills, and raft's
// sender blocks in AppendEntries without ever seeing that the reader has
// gone. Heartbeats go on over another connection, so nothing notices; the
// follower stays behind until leadership changes. Closing the pipeline
// unblocks the sender (ErrPipelineShutdown), and raft falls back to plain
// appends, which walk back to where the follower's log matches.
type closingPipeline struct {
	raft.AppendPipeline
	accepted func(raft.AppendFuture) // called with each accepted append, if set
	out      chan raft.AppendFuture
	stop     chan struct{}
	once     sync.Once
}

func newClosingPipeline(p raft.AppendPipeline) *closingPipeline {
	c := &closingPipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), stop: make(chan struct{})}
	go c.relay()
	return c
}

// relay hands raft each completed append, and closes the pipeline after
// the first failed one.
func (c *closingPipeline) relay() {
	in := c.AppendPipeline.Consumer()
	for {
		var f raft.AppendFuture
		select {
		case f = <-in:
		case <-c.stop:
			return
		}
		failed := f.Error() != nil || !f.Response().Success
		if !failed && c.accepted != nil && f.Response().Term == f.Request().Term {
			c.accepted(f)
		}
		select {
		case c.out <- f:
		case <-c.stop:
			return
		}
		if failed {
			c.Close()
			return
		}
	}
}

// Consumer returns the completed appends, in order.
func (c *closingPipeline) Consumer() <-chan raft.AppendFuture { return c.out }

// Close closes the pipeline; it may be called more than once.
func (c *closingPipeline) Close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		err = c.AppendPipeline.Close()
	})
	return err
}
