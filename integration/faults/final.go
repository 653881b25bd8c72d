package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"qledger/api/client"
)

// FinalLog waits until every node of c's group serves the same head,
// verifies the leader's whole chain up to it, and returns the log it
// holds. Call it on a group's view (Groups) once the faults have healed
// and the clients have stopped.
func (c *Cluster) FinalLog(ctx context.Context, d time.Duration) (Log, client.Head, error) {
	deadline := time.Now().Add(d)
	var head client.Head
	for {
		h, same := c.sameHead(ctx)
		if same {
			head = h
			break
		}
		if time.Now().After(deadline) {
			return Log{}, client.Head{}, fmt.Errorf("faults: replicas serve different heads after %v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ld, err := c.Leader(ctx)
	if err != nil {
		return Log{}, client.Head{}, err
	}
	if _, err := ld.API.VerifyGroupTo(ctx, c.ID, head); err != nil {
		return Log{}, client.Head{}, fmt.Errorf("faults: the final chain does not verify: %w", err)
	}
	l := Log{Hashes: map[uint64]string{}, Size: head.LogSize}
	for from := uint64(1); from <= head.Height; {
		bs, err := ld.API.Blocks(ctx, c.ID, from, 200, Linearizable)
		if err != nil {
			return Log{}, client.Head{}, err
		}
		if len(bs) == 0 {
			return Log{}, client.Head{}, fmt.Errorf("faults: no blocks from height %d, head %d", from, head.Height)
		}
		for _, b := range bs {
			l.Hashes[b.Height] = b.Hash
			base := b.LogSize - uint64(len(b.Txs))
			for i, tx := range b.Txs {
				e := Entry{Index: base + uint64(i), Height: b.Height, TxID: tx.ID, Key: tx.Tx.IdempotencyKey}
				if tx.Tx.Kind == "exec" {
					x, err := client.DecodeExecRecord(tx.Tx.Payload)
					if err != nil {
						return Log{}, client.Head{}, fmt.Errorf("faults: execution record %.16s at index %d: %w", tx.ID, e.Index, err)
					}
					e.Exec = &ExecEntry{RequestID: x.RequestID, Caller: x.Caller, Input: x.Input, Executor: x.Executor, Agreed: x.Agreed, Result: x.ResultHash, Output: x.Response}
				}
				l.Entries = append(l.Entries, e)
			}
			from = b.Height + 1
		}
	}
	return l, head, nil
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
func (c *Cluster) ProofChecker(ctx context.Context, api *client.Client, head client.Head) func(Entry) error {
	return func(e Entry) error {
		r, err := txBackingOff(ctx, api, e.TxID)
		if err != nil {
			return err
		}
		if r.Index != e.Index {
			return fmt.Errorf("served at index %d", r.Index)
		}
		return client.VerifyTxAgainstHead(r, head)
	}
}

// txBackingOff reads a transaction at stale level and, while the node
// answers 429 rate_limited (proofWorkers readers share one caller's
// budget), waits as the answer says and asks again until ctx ends. A
// proof check is a client like any other: it must respect the node's
// limit, not count a refusal as a bad proof.
func txBackingOff(ctx context.Context, api *client.Client, id string) (client.TxResponse, error) {
	for {
		r, err := api.Tx(ctx, id, Stale)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, err
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
