package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"qledger/api/client"
)

// FinalLog waits until every node of c's group serves the same head,
// verifies the leader's whole chain up to it, and returns the log it
// holds. Call it on a group's view (Groups) once the faults have healed
// and the clients have stopped.
func (c *Cluster) FinalLog(ctx context.Context, d time.Duration) (Log, client.Head, error) {
	deadline := time.Now().Add(d)
	for {
		head, err := c.agreedHead(ctx, deadline, d)
		if err != nil {
			return Log{}, client.Head{}, err
		}
		l, err := c.readLog(ctx, head)
		if err != nil {
			return Log{}, client.Head{}, err
		}
		// A commit the clients no longer wait for (an invocation whose
		// caller gave up, a write still queued on a node) may land while
		// the log is read: the log is final only once the replicas still
		// agree on the head it was read to.
		if now, same := c.sameHead(ctx); same && now.Hash == head.Hash {
			return l, head, nil
		}
		if time.Now().After(deadline) {
			return Log{}, client.Head{}, fmt.Errorf("faults: the log still grows %v after the clients stopped", d)
		}
	}
}

// agreedHead waits until every node of c's group serves the same head.
func (c *Cluster) agreedHead(ctx context.Context, deadline time.Time, d time.Duration) (client.Head, error) {
	for {
		if h, same := c.sameHead(ctx); same {
			return h, nil
		}
		if time.Now().After(deadline) {
			return client.Head{}, fmt.Errorf("faults: replicas serve different heads after %v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readLog verifies the leader's whole chain up to head and returns the
// log it holds.
func (c *Cluster) readLog(ctx context.Context, head client.Head) (Log, error) {
	ld, err := c.Leader(ctx)
	if err != nil {
		return Log{}, err
	}
	if _, err := ld.API.VerifyGroupTo(ctx, c.ID, head); err != nil {
		return Log{}, fmt.Errorf("faults: the final chain does not verify: %w", err)
	}
	l := Log{Hashes: map[uint64]string{}, Size: head.LogSize}
	for from := uint64(1); from <= head.Height; {
		bs, err := ld.API.Blocks(ctx, c.ID, from, 200, Linearizable)
		if err != nil {
			return Log{}, err
		}
		if len(bs) == 0 {
			return Log{}, fmt.Errorf("faults: no blocks from height %d, head %d", from, head.Height)
		}
		for _, b := range bs {
			if b.Height > head.Height {
				break
			}
			l.Hashes[b.Height] = b.Hash
			base := b.LogSize - uint64(len(b.Txs))
			for i, tx := range b.Txs {
				e := Entry{Index: base + uint64(i), Height: b.Height, TxID: tx.ID, Key: tx.Tx.IdempotencyKey}
				if tx.Tx.Kind == "exec" {
					x, err := client.DecodeExecRecord(tx.Tx.Payload)
					if err != nil {
						return Log{}, fmt.Errorf("faults: execution record %.16s at index %d: %w", tx.ID, e.Index, err)
					}
					e.Exec = &ExecEntry{RequestID: x.RequestID, Caller: x.Caller, Input: x.Input, Executor: x.Executor, Agreed: x.Agreed, Result: x.ResultHash, Output: x.Response}
				}
				l.Entries = append(l.Entries, e)
			}
			from = b.Height + 1
		}
	}
	return l, nil
}

// sameHead reads every node's head at stale level and reports whether
// they agree.
func (c *Cluster) sameHead(ctx context.Context) (client.Head, bool) {
	var first client.Head
	for i, n := range c.Nodes {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := n.API.Head(sctx, c.ID, Stale)
		cancel()
		if err != nil || (i > 0 && (h.Height != first.Height || h.Hash != first.Hash)) {
			return client.Head{}, false
		}
		if i == 0 {
			first = h
		}
	}
	return first, true
}

// ProofChecker returns a durability proof check against head: the entry's
// transaction carries an inclusion proof that verifies for head's log, at
// the entry's index. It reads at stale level, which costs the serving
// node no round of its group per read (tens of thousands of reads after
// a round): the replicas have converged on head (FinalLog), and a proof
// must verify against head whatever level served it.
//
// The log may still grow after FinalLog returns (a commit no client
// waits for). A proof for a longer log is then held to head through a
// consistency proof from head's log to the proof's: the entry's index is
// below head's size, so the entry is at that index in head's log too.
func (c *Cluster) ProofChecker(ctx context.Context, api *client.Client, head client.Head) func(Entry) error {
	var extends sync.Map // "size root" of a longer log -> error of its consistency with head
	return func(e Entry) error {
		r, err := txBackingOff(ctx, api, e.TxID)
		if err != nil {
			return err
		}
		if r.Index != e.Index {
			return fmt.Errorf("served at index %d", r.Index)
		}
		if r.Proof.TreeSize <= head.LogSize || r.Index >= head.LogSize {
			return client.VerifyTxAgainstHead(r, head)
		}
		if err := client.VerifyTx(r); err != nil {
			return err
		}
		k := fmt.Sprintf("%d %s", r.Proof.TreeSize, r.Proof.Root)
		if v, ok := extends.Load(k); ok {
			return v.(errorBox).err
		}
		err = backingOff(ctx, func() error {
			p, err := api.Consistency(ctx, c.ID, head.LogSize, r.Proof.TreeSize, Stale)
			if err != nil {
				return err
			}
			if p.From != head.LogSize || p.To != r.Proof.TreeSize {
				return fmt.Errorf("asked for a consistency proof from %d to %d, got %d to %d", head.LogSize, r.Proof.TreeSize, p.From, p.To)
			}
			return client.VerifyConsistency(p, head.LogRoot, r.Proof.Root)
		})
		if err != nil {
			err = fmt.Errorf("proof is for a longer log (size %d) that does not extend head %d (size %d): %w", r.Proof.TreeSize, head.Height, head.LogSize, err)
		}
		extends.Store(k, errorBox{err})
		return err
	}
}

// errorBox lets a nil error be stored in a sync.Map.
type errorBox struct{ err error }

// txBackingOff reads a transaction at stale level, waiting out refusals
// as backingOff does.
func txBackingOff(ctx context.Context, api *client.Client, id string) (client.TxResponse, error) {
	var r client.TxResponse
	err := backingOff(ctx, func() error {
		var err error
		r, err = api.Tx(ctx, id, Stale)
		return err
	})
	return r, err
}

// backingOff calls read and, while the node answers 429 rate_limited
// (proofWorkers readers share one caller's budget), waits as the answer
// says and calls it again until ctx ends. A proof check is a client like
// any other: it must respect the node's limit, not count a refusal as a
// bad proof.
func backingOff(ctx context.Context, read func() error) error {
	for {
		err := read()
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(rateLimitPause):
		}
	}
}

// rateLimitPause is how long txBackingOff waits after a 429: the node's
// Retry-After is in whole seconds, far coarser than a token bucket
// refilling at thousands per second.
const rateLimitPause = 20 * time.Millisecond

// SignatureChecker checks a head's signature against the cluster CA.
func (c *Cluster) SignatureChecker() func(client.Head) error {
	return func(h client.Head) error {
		_, err := client.VerifyHeadSignature(h, c.Roots)
		return err
	}
}
