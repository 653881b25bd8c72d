package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"qledger/fsm"
)

// pendingTx is one transaction waiting for a block.
type pendingTx struct {
	raw  []byte
	done chan txOutcome // buffered, receives exactly once
}

type txOutcome struct {
	res fsm.TxResult
	err error
}

// batcher turns a stream of transactions into blocks on the leader: one
// raft log entry per block. It proposes as soon as a proposal slot is free
// (MaxInflight slots), so a lone client waits for one commit, while under
// load transactions pile up behind the in-flight proposals and the next
// block takes all of them, up to MaxBatchTxs and MaxBatchBytes. A non-zero
// MaxBatchDelay holds each block open that long for more transactions.
type batcher struct {
	n     *Node
	in    chan *pendingTx
	slots chan struct{}
}

func newBatcher(n *Node) *batcher {
	return &batcher{n: n, in: make(chan *pendingTx, 4*n.cfg.MaxBatchTxs), slots: make(chan struct{}, n.cfg.MaxInflight)}
}

// enqueue queues raw for a block; wait then waits for its outcome.
func (b *batcher) enqueue(ctx context.Context, raw []byte) (*pendingTx, error) {
	p := &pendingTx{raw: raw, done: make(chan txOutcome, 1)}
	select {
	case b.in <- p:
		return p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: queueing for a block", ErrTimeout)
	case <-b.n.stop:
		return nil, ErrShutdown
	}
}

// wait waits for the outcome of a transaction queued by enqueue.
func (b *batcher) wait(ctx context.Context, p *pendingTx) (fsm.TxResult, error) {
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		// The transaction may still commit; a retry with the same bytes
		// or idempotency key is answered from the dedup table.
		return fsm.TxResult{}, fmt.Errorf("%w: waiting for commit", ErrUnknownOutcome)
	case <-b.n.stop:
		return fsm.TxResult{}, ErrShutdown
	}
}

func (b *batcher) run() {
	cfg := b.n.cfg
	for {
		var first *pendingTx
		select {
		case first = <-b.in:
		case <-b.n.stop:
			return
		}
		batch := []*pendingTx{first}
		size := len(first.raw)
		full := func() bool { return len(batch) >= cfg.MaxBatchTxs || size >= cfg.MaxBatchBytes }
		add := func(p *pendingTx) { batch = append(batch, p); size += len(p.raw) }

		if cfg.MaxBatchDelay > 0 {
			timer := time.NewTimer(cfg.MaxBatchDelay)
		linger:
			for !full() {
				select {
				case p := <-b.in:
					add(p)
				case <-timer.C:
					break linger
				case <-b.n.stop:
					timer.Stop()
					b.fail(batch, ErrShutdown)
					return
				}
			}
			timer.Stop()
		}
		// Wait for a proposal slot, taking more transactions meanwhile.
	wait:
		for {
			if full() {
				select {
				case b.slots <- struct{}{}:
					break wait
				case <-b.n.stop:
					b.fail(batch, ErrShutdown)
					return
				}
			}
			select {
			case b.slots <- struct{}{}:
				break wait
			case p := <-b.in:
				add(p)
			case <-b.n.stop:
				b.fail(batch, ErrShutdown)
				return
			}
		}
		// Take whatever else is already queued.
	drain:
		for !full() {
			select {
			case p := <-b.in:
				add(p)
			default:
				break drain
			}
		}
		b.propose(batch)
	}
}

// propose hands one block to raft and answers its transactions when the
// entry commits (in a goroutine, so the next block can form meanwhile).
func (b *batcher) propose(batch []*pendingTx) {
	txs := make([][]byte, len(batch))
	for i, p := range batch {
		txs[i] = p.raw
	}
	start := time.Now()
	f := b.n.raft.Apply(fsm.EncodeAppendBlock(start.UnixNano(), txs), b.n.cfg.ApplyTimeout)
	go func() {
		defer func() { <-b.slots }()
		if err := f.Error(); err != nil {
			b.fail(batch, b.n.convert(err))
			return
		}
		res, ok := f.Response().(*fsm.ApplyResult)
		switch {
		case !ok:
			b.fail(batch, fmt.Errorf("%w: unexpected apply response %T", ErrStore, f.Response()))
			return
		case errors.Is(res.Err, fsm.ErrStopped):
			// Committed, but this replica stopped before applying it:
			// it applies it on resuming, and the other replicas have.
			b.fail(batch, fmt.Errorf("%w: committed, but this replica's state machine is stopped (%v); retry with the same idempotency key", ErrUnknownOutcome, res.Err))
			return
		case res.Err != nil:
			b.fail(batch, fmt.Errorf("%w: %v", ErrStore, res.Err))
			return
		case len(res.Txs) != len(batch):
			b.fail(batch, fmt.Errorf("%w: %d results for %d transactions", ErrStore, len(res.Txs), len(batch)))
			return
		}
		b.n.metrics.observeBlock(len(batch), time.Since(start))
		for i, p := range batch {
			p.done <- txOutcome{res: res.Txs[i]}
		}
	}()
}

func (b *batcher) fail(batch []*pendingTx, err error) {
	for _, p := range batch {
		p.done <- txOutcome{err: err}
	}
}
