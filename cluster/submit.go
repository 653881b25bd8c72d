package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"qledger/chain"
	"qledger/fsm"
)

// Receipt says where a committed transaction is.
type Receipt struct {
	ID     chain.Hash `json:"id"`
	Group  int        `json:"group"`
	Height uint64     `json:"height"`
	// Index is the transaction's leaf index in the group's whole log.
	Index uint64 `json:"index"`
	// Duplicate is set when the answer came from the de-duplication table:
	// the transaction had been committed before under the same
	// idempotency key (or with the same bytes).
	Duplicate bool `json:"duplicate,omitempty"`
}

// SubmitRequest is the internal RPC form of a write.
type SubmitRequest struct {
	Tx   []byte `json:"tx"`
	Hops int    `json:"hops"`
}

const maxHops = 3

// GroupForKey is the group a write goes to when the caller names none:
// writes with an idempotency key go to a group fixed by the key, so a
// retry reaches the same de-duplication table; others go to a random group.
func GroupForKey(submitter, key string, groups int) int {
	if groups <= 1 {
		return 0
	}
	if key == "" {
		var b [8]byte
		rand.Read(b[:])
		return int(binary.BigEndian.Uint64(b[:]) % uint64(groups))
	}
	h := sha256.Sum256(fsm.DedupKey(submitter, key))
	return int(binary.BigEndian.Uint64(h[:8]) % uint64(groups))
}

// Submit commits one transaction to its group (t.Group) from any node and
// returns its receipt once the block holding it has committed. A zero
// nonce is replaced with a random one. Retries inside Submit reuse the
// same bytes, so a leadership change never commits it twice.
func (n *Node) Submit(ctx context.Context, t chain.Tx) (Receipt, error) {
	drawn := t.Nonce == ([chain.NonceSize]byte{})
	if drawn {
		rand.Read(t.Nonce[:])
	}
	if t.Kind == 0 {
		t.Kind = chain.TxData
	}
	if int(t.Group) >= n.cfg.Groups {
		return Receipt{}, fmt.Errorf("%w: group %d, cluster has %d groups", ErrBadRequest, t.Group, n.cfg.Groups)
	}
	if err := t.Validate(); err != nil {
		if errors.Is(err, chain.ErrTooLarge) {
			return Receipt{}, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return Receipt{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	start := time.Now()
	raw := t.Encode()
	r, err := n.submitRaw(ctx, raw, int(t.Group), 0)
	n.metrics.observeSubmit(err, time.Since(start))
	// Bytes with a nonce drawn here were never sent before this call, so
	// finding them committed means an earlier attempt of this call
	// committed: to the caller that is the first commit, not a duplicate.
	if drawn && r.Duplicate && r.ID == chain.TxID(raw) {
		r.Duplicate = false
	}
	return r, err
}

func (n *Node) submitRaw(ctx context.Context, raw []byte, group, hops int) (Receipt, error) {
	backoff := 10 * time.Millisecond
	var leaderless time.Time // since when no leader was reachable
	for {
		moved := n.leaders.next()
		r, err := n.submitOnce(ctx, raw, group, hops)
		if err == nil || !retryable(err) {
			return r, err
		}
		// A group without a leader for longer than an election takes has
		// lost quorum, most likely: refuse now instead of at the deadline.
		if errors.Is(err, ErrNoLeader) {
			if leaderless.IsZero() {
				leaderless = time.Now()
			} else if time.Since(leaderless) > n.noLeaderGrace() {
				return r, fmt.Errorf("%w: group %d has had no leader for %s (quorum lost?)", ErrNoLeader, group, time.Since(leaderless).Round(time.Millisecond))
			}
		} else {
			leaderless = time.Time{}
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, ErrUnknownOutcome) {
				return r, err
			}
			return r, fmt.Errorf("%w (last error: %v)", ErrNoLeader, err)
		case <-n.stop:
			return r, ErrShutdown
		case <-moved: // a new leader (or none): try again at once
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// noLeaderGrace is how long a write waits for a group to elect a leader.
func (n *Node) noLeaderGrace() time.Duration {
	return max(4*n.cfg.ElectionTimeout, 2*time.Second)
}

// retryable errors are those after which the same bytes may be sent again:
// nothing committed, or it did and the FSM will answer from its tables.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrUnknownGroup) || abandoned(err) || isTransport(err)
}

// abandoned reports a request given up by callLeader, outcome unknown.
func abandoned(err error) bool {
	return errors.Is(err, errLeaderMoved) || errors.Is(err, errHopTimeout)
}

// isTransport reports a failure to reach another node (not an answer).
func isTransport(err error) bool {
	var re *remoteError
	return err != nil && !errors.As(err, &re) && !errors.Is(err, ErrShutdown) && !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrStore) && !errors.Is(err, ErrTimeout)
}

func (n *Node) submitOnce(ctx context.Context, raw []byte, group, hops int) (Receipt, error) {
	if group != n.group {
		return n.forwardSubmit(ctx, raw, group, hops)
	}
	if !n.IsLeader() {
		if hops >= maxHops {
			return Receipt{}, fmt.Errorf("%w: too many forwarding hops", ErrNotLeader)
		}
		return n.forwardToLeader(ctx, raw, hops)
	}
	w, r, err := n.queueLocal(ctx, raw)
	if w == nil {
		return r, err
	}
	return n.awaitLocal(ctx, w)
}

// localWrite is a write queued for a block on this node, the leader.
type localWrite struct {
	p   *pendingTx
	key string // its idempotency key, for error messages
}

// queueLocal checks raw on the group leader and queues it for the next
// block. A write answered at once (an error, or a duplicate found in the
// de-duplication table) returns a nil localWrite and its answer.
func (n *Node) queueLocal(ctx context.Context, raw []byte) (*localWrite, Receipt, error) {
	t, err := chain.DecodeTx(raw)
	if err != nil {
		return nil, Receipt{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if int(t.Group) != n.group {
		return nil, Receipt{}, fmt.Errorf("%w: a write for group %d at a node of group %d", ErrBadRequest, t.Group, n.group)
	}
	if err := n.fsm.Err(); err != nil {
		// Its store cannot answer the key lookup, nor apply the entry:
		// refuse before proposing (watchStore hands leadership over).
		return nil, Receipt{}, fmt.Errorf("%w: %v", ErrStopped, err)
	}
	// Fast path: a key already committed is answered without a proposal.
	// Apply checks again, so a race with an in-flight duplicate is safe.
	if id, loc, ok, err := n.store.Lookup(&t); err != nil {
		if errors.Is(err, fsm.ErrIdempotencyConflict) {
			return nil, Receipt{}, fmt.Errorf("%w: key %q", ErrConflict, t.IdempotencyKey)
		}
		return nil, Receipt{}, fmt.Errorf("%w: %v", ErrStore, err)
	} else if ok {
		return nil, Receipt{ID: id, Group: n.group, Height: loc.Height, Index: loc.Index, Duplicate: true}, nil
	}
	p, err := n.batch.enqueue(ctx, raw)
	if err != nil {
		return nil, Receipt{}, err
	}
	return &localWrite{p: p, key: t.IdempotencyKey}, Receipt{}, nil
}

// awaitLocal waits for a queued write's block and converts its outcome.
func (n *Node) awaitLocal(ctx context.Context, w *localWrite) (Receipt, error) {
	res, err := n.batch.wait(ctx, w.p)
	if err != nil {
		return Receipt{}, err
	}
	if res.Err != nil {
		if errors.Is(res.Err, fsm.ErrIdempotencyConflict) {
			return Receipt{}, fmt.Errorf("%w: key %q", ErrConflict, w.key)
		}
		if errors.Is(res.Err, fsm.ErrInvalidRecord) {
			return Receipt{}, fmt.Errorf("%w: %v", ErrBadRequest, res.Err)
		}
		return Receipt{}, fmt.Errorf("%w: %v", ErrStore, res.Err)
	}
	return Receipt{ID: res.ID, Group: n.group, Height: res.Location.Height, Index: res.Location.Index, Duplicate: res.Duplicate}, nil
}

func (n *Node) forwardSubmit(ctx context.Context, raw []byte, group, hops int) (Receipt, error) {
	if hops >= maxHops {
		return Receipt{}, fmt.Errorf("%w: too many forwarding hops", ErrUnknownGroup)
	}
	nodes := n.dir.inGroup(group)
	if len(nodes) == 0 {
		return Receipt{}, fmt.Errorf("%w: group %d", ErrUnknownGroup, group)
	}
	var last error
	for _, target := range nodes {
		var r Receipt
		err := n.client.call(ctx, target.Addr, mSubmit, SubmitRequest{Tx: raw, Hops: hops + 1}, &r)
		if err == nil || !isTransport(err) {
			return r, err
		}
		last = err
	}
	return Receipt{}, groupUnreachable(ErrUnknownOutcome, group, last)
}

func (n *Node) handleSubmit(ctx context.Context, body []byte) (any, error) {
	var req SubmitRequest
	if err := unmarshal(body, &req); err != nil {
		return nil, err
	}
	t, err := chain.DecodeTx(req.Tx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if int(t.Group) >= n.cfg.Groups {
		return nil, fmt.Errorf("%w: group %d", ErrBadRequest, t.Group)
	}
	return n.submitRaw(ctx, req.Tx, int(t.Group), req.Hops)
}
