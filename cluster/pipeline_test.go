package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakePipeline is an append pipeline whose completed appends the test
// hands over, and which records Close.
type fakePipeline struct {
	done   chan raft.AppendFuture
	closed chan struct{}
}

func (p *fakePipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	return nil, nil
}
func (p *fakePipeline) Consumer() <-chan raft.AppendFuture { return p.done }
func (p *fakePipeline) Close() error                       { close(p.closed); return nil }

// doneAppend is a completed append.
type doneAppend struct {
	raft.AppendFuture
	resp *raft.AppendEntriesResponse
}

func (d doneAppend) Error() error                          { return nil }
func (d doneAppend) Response() *raft.AppendEntriesResponse { return d.resp }
func (d doneAppend) Request() *raft.AppendEntriesRequest   { return &raft.AppendEntriesRequest{} }
func (d doneAppend) Start() time.Time                      { return time.Time{} }
func appended(ok bool) raft.AppendFuture {
	return doneAppend{resp: &raft.AppendEntriesResponse{Success: ok}}
}
func closedWithin(p *fakePipeline, d time.Duration) bool {
	select {
	case <-p.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// TestPipelineClosesAfterFailedAppend: a follower that refuses a
// pipelined append (its disk is full) made raft v1.7.3's response reader
// stop while its sender went on filling the in-flight queue, which then
// blocked for good: replication to that follower stopped while
// heartbeats went on (found by the disk-full nemesis; the follower stayed
// 56,000 entries behind). The wrapped pipeline hands the failed append to
// raft and closes itself, which unblocks the sender.
func TestPipelineClosesAfterFailedAppend(t *testing.T) {
	inner := &fakePipeline{done: make(chan raft.AppendFuture, 4), closed: make(chan struct{})}
	p := newClosingPipeline(inner)
	inner.done <- appended(true)
	if f := <-p.Consumer(); !f.Response().Success {
		t.Fatal("a successful append was handed over as failed")
	}
	if closedWithin(inner, 100*time.Millisecond) {
		t.Fatal("the pipeline closed after a successful append")
	}
	inner.done <- appended(false)
	inner.done <- appended(true) // in flight behind the refusal
	if f := <-p.Consumer(); f.Response().Success {
		t.Fatal("the refused append was handed over as successful")
	}
	// raft reads no more responses now; the pipeline must close anyway.
	if !closedWithin(inner, 10*time.Second) {
		t.Fatal("the pipeline stayed open after a refused append: raft's sender would block for good")
	}
	if err := p.Close(); err != nil { // raft closes it too: no double close
		t.Fatal(err)
	}
}
