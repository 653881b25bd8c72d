package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Forwarded writes: a follower sends the writes it receives for its own
// group to the group leader together, one mSubmitBatch RPC for all the
// writes that arrived while its earlier batches were in flight, and the
// leader queues them for its next block together. Each write keeps its
// own answer (a receipt, or its own error: one conflicting write does not
// fail the others), its own deadline, and its retries: a batch that fails
// as a whole (the leader moved, none is known, the connection broke) fails
// each of its writes with that error, and each write's submitRaw loop sends
// the same bytes again, batched anew, to whichever node leads by then.

// submitBatchRequest is the internal RPC form of writes forwarded together.
type submitBatchRequest struct {
	Txs [][]byte `json:"txs"`
}

// submitBatchItem is one write's answer in a batch: its receipt, or an
// error as an RPC error code (errCodes) and message.
type submitBatchItem struct {
	Receipt Receipt `json:"receipt"`
	Code    uint8   `json:"code,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// submitBatchResponse holds one item per request transaction, in order.
type submitBatchResponse struct {
	Results []submitBatchItem `json:"results"`
}

const (
	// maxForwardTxs and maxForwardBytes bound one forwarded batch (a
	// single larger write still goes, alone).
	maxForwardTxs   = 1024
	maxForwardBytes = 4 << 20
	// forwardInflight is how many batches a follower keeps in flight to
	// its leader; writes arriving meanwhile wait to form the next batch.
	// A batch holds its slot until its writes commit, so a write that
	// finds every slot taken waits up to a commit round before it is
	// sent: with 4 slots, 64 and 256 API clients on a dev cluster were
	// 10-20% slower than with 16 in three interleaved pairs of runs, and
	// CPU per write was the same (batches of ~5 already cut most of the
	// per-RPC cost).
	forwardInflight = 16
)

// errBatchRefused: the leader refused the batch RPC as a whole as a bad
// request, as a node from before mSubmitBatch does ("unknown rpc
// method"); nothing was submitted, and the write goes alone instead.
var errBatchRefused = errors.New("cluster: the leader refused a forwarded batch")

// forwardedTx is one write waiting for its batch's answer.
type forwardedTx struct {
	raw  []byte
	done chan forwardOutcome // buffered, receives exactly once
}

type forwardOutcome struct {
	r   Receipt
	err error
}

// forwarder gathers concurrent forwarded writes into batches. send
// delivers one batch and returns one outcome per write, or an error for
// the batch as a whole. Safe for concurrent use; run must be running.
type forwarder struct {
	in    chan *forwardedTx
	slots chan struct{}
	stop  <-chan struct{}
	send  func(ctx context.Context, txs [][]byte) ([]forwardOutcome, error)
}

// newForwarder returns a forwarder that keeps up to inflight batches in
// flight through send.
func newForwarder(stop <-chan struct{}, inflight int, send func(context.Context, [][]byte) ([]forwardOutcome, error)) *forwarder {
	return &forwarder{in: make(chan *forwardedTx, maxForwardTxs), slots: make(chan struct{}, inflight), stop: stop, send: send}
}

// submit queues raw for the next batch and waits for its own outcome.
// If ctx ends first the write may still commit (ErrUnknownOutcome): a
// retry with the same bytes is answered from the de-duplication table.
func (f *forwarder) submit(ctx context.Context, raw []byte) (Receipt, error) {
	// Nothing waiting and a slot free: the write would go alone anyway,
	// so it goes from here, without two goroutine hand-offs.
	if len(f.in) == 0 {
		select {
		case f.slots <- struct{}{}:
			return f.sendAlone(ctx, raw)
		default:
		}
	}
	p := &forwardedTx{raw: raw, done: make(chan forwardOutcome, 1)}
	select {
	case f.in <- p:
	case <-ctx.Done():
		return Receipt{}, fmt.Errorf("%w: queueing to forward", ErrTimeout)
	case <-f.stop:
		return Receipt{}, ErrShutdown
	}
	select {
	case o := <-p.done:
		return o.r, o.err
	case <-ctx.Done():
		return Receipt{}, fmt.Errorf("%w: waiting for the leader", ErrUnknownOutcome)
	case <-f.stop:
		return Receipt{}, ErrShutdown
	}
}

// sendAlone sends raw as a batch of its own in a slot the caller took,
// bounded by the caller's ctx: if that ends first the write may still
// commit (ErrUnknownOutcome), as in submit.
func (f *forwarder) sendAlone(ctx context.Context, raw []byte) (Receipt, error) {
	defer func() { <-f.slots }()
	out, err := f.send(ctx, [][]byte{raw})
	switch {
	case err == nil && len(out) != 1:
		return Receipt{}, fmt.Errorf("%w: %d answers for 1 forwarded write", ErrUnknownOutcome, len(out))
	case err != nil && ctx.Err() != nil:
		return Receipt{}, fmt.Errorf("%w: waiting for the leader (%v)", ErrUnknownOutcome, err)
	case err != nil:
		return Receipt{}, err
	}
	return out[0].r, out[0].err
}

// run forms batches until stop: a write is sent at once when a slot is
// free, and under load the writes that arrive while every slot is taken
// go together in the next batch.
func (f *forwarder) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.stop
		cancel()
	}()
	for {
		var first *forwardedTx
		select {
		case first = <-f.in:
		case <-f.stop:
			return
		}
		batch, size := []*forwardedTx{first}, len(first.raw)
		full := func() bool { return len(batch) >= maxForwardTxs || size >= maxForwardBytes }
	wait:
		for !full() {
			select {
			case f.slots <- struct{}{}:
				break wait
			case p := <-f.in:
				batch, size = append(batch, p), size+len(p.raw)
			case <-f.stop:
				failForwarded(batch, ErrShutdown)
				return
			}
		}
		if full() {
			select {
			case f.slots <- struct{}{}:
			case <-f.stop:
				failForwarded(batch, ErrShutdown)
				return
			}
		}
	drain:
		for !full() {
			select {
			case p := <-f.in:
				batch, size = append(batch, p), size+len(p.raw)
			default:
				break drain
			}
		}
		go f.deliver(ctx, batch)
	}
}

// deliver sends one batch and answers each of its writes exactly once.
func (f *forwarder) deliver(ctx context.Context, batch []*forwardedTx) {
	defer func() { <-f.slots }()
	txs := make([][]byte, len(batch))
	for i, p := range batch {
		txs[i] = p.raw
	}
	out, err := f.send(ctx, txs)
	if err == nil && len(out) != len(batch) {
		err = fmt.Errorf("%w: %d answers for %d forwarded writes", ErrUnknownOutcome, len(out), len(batch))
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ErrShutdown
		}
		failForwarded(batch, err)
		return
	}
	for i, p := range batch {
		p.done <- out[i]
	}
}

func failForwarded(batch []*forwardedTx, err error) {
	for _, p := range batch {
		p.done <- forwardOutcome{err: err}
	}
}

// sendBatch is the forwarder's send on a node: one mSubmitBatch call to
// the group leader through callLeader, so a batch follows leadership as
// a single forwarded request does.
func (n *Node) sendBatch(ctx context.Context, txs [][]byte) ([]forwardOutcome, error) {
	var resp submitBatchResponse
	err := n.callLeader(ctx, mSubmitBatch, submitBatchRequest{Txs: txs}, &resp)
	var re *remoteError
	if errors.As(err, &re) && errors.Is(err, ErrBadRequest) {
		return nil, fmt.Errorf("%w: %v", errBatchRefused, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]forwardOutcome, len(resp.Results))
	for i, it := range resp.Results {
		if it.Code != 0 {
			out[i].err = remoteErr(it.Code, it.Error)
		} else {
			out[i].r = it.Receipt
		}
	}
	return out, nil
}

// forwardToLeader sends one write of this node's group to the group
// leader, batched with concurrent ones; a leader that does not know
// batches gets it alone.
func (n *Node) forwardToLeader(ctx context.Context, raw []byte, hops int) (Receipt, error) {
	return n.forwardThrough(ctx, n.forward, raw, hops)
}

// forwardThrough is forwardToLeader with the batches formed by f.
func (n *Node) forwardThrough(ctx context.Context, f *forwarder, raw []byte, hops int) (Receipt, error) {
	r, err := f.submit(ctx, raw)
	if !errors.Is(err, errBatchRefused) {
		return r, err
	}
	err = n.callLeader(ctx, mSubmit, SubmitRequest{Tx: raw, Hops: hops + 1}, &r)
	return r, err
}

// handleSubmitBatch serves mSubmitBatch on the group leader: every write
// is queued for the next block at once (so they share one raft entry, or
// a few), and each gets its own answer. A node that does not lead its
// group refuses the whole batch with ErrNotLeader, and the sender sends
// each write again to the leader it learns of.
func (n *Node) handleSubmitBatch(ctx context.Context, body []byte) (any, error) {
	var req submitBatchRequest
	if err := unmarshal(body, &req); err != nil {
		return nil, err
	}
	if len(req.Txs) == 0 || len(req.Txs) > maxForwardTxs {
		return nil, fmt.Errorf("%w: a forwarded batch holds 1 to %d writes, got %d", ErrBadRequest, maxForwardTxs, len(req.Txs))
	}
	if !n.IsLeader() {
		return nil, fmt.Errorf("%w: group %d", ErrNotLeader, n.group)
	}
	start := time.Now()
	res := make([]submitBatchItem, len(req.Txs))
	queued := make([]*localWrite, len(req.Txs))
	for i, raw := range req.Txs {
		w, r, err := n.queueLocal(ctx, raw)
		if w == nil {
			res[i] = batchItem(r, err)
		}
		queued[i] = w
	}
	for i, w := range queued {
		if w != nil {
			res[i] = batchItem(n.awaitLocal(ctx, w))
		}
	}
	n.logger.Trace("forwarded batch answered", "writes", len(req.Txs), "took", time.Since(start))
	return submitBatchResponse{Results: res}, nil
}

func batchItem(r Receipt, err error) submitBatchItem {
	if err != nil {
		return submitBatchItem{Code: codeOf(err), Error: err.Error()}
	}
	return submitBatchItem{Receipt: r}
}
