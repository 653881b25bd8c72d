package client

import (
	"context"
	"fmt"
	"iter"

	"qledger/chain"
)

func parseHashes(in []string) ([]chain.Hash, error) {
	out := make([]chain.Hash, len(in))
	for i, s := range in {
		h, err := chain.ParseHash(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// VerifyTx checks a TxResponse on its own: the ID and the leaf hash are
// the hashes of the transaction bytes, and the inclusion proof leads from
// the leaf to the stated root. To trust the root, compare it with a head
// you trust (VerifyTxAgainstHead).
//
// A withheld transaction has no bytes: only the leaf hash's inclusion is
// checked, and the ID cannot be.
func VerifyTx(r TxResponse) error {
	var leaf chain.Hash
	if r.Withheld {
		l, err := chain.ParseHash(r.LeafHash)
		if err != nil {
			return fmt.Errorf("%w: leaf hash: %v", ErrVerify, err)
		}
		leaf = l
	} else {
		id := chain.TxID(r.TxBytes)
		if id.String() != r.ID {
			return fmt.Errorf("%w: transaction bytes hash to %s, not %s", ErrVerify, id, r.ID)
		}
		leaf = chain.LeafHash(r.TxBytes)
		if leaf.String() != r.LeafHash {
			return fmt.Errorf("%w: leaf hash %s, bytes hash to %s", ErrVerify, r.LeafHash, leaf)
		}
	}
	if r.Proof.LeafIndex != r.Index {
		return fmt.Errorf("%w: proof is for leaf %d, transaction is leaf %d", ErrVerify, r.Proof.LeafIndex, r.Index)
	}
	root, err := chain.ParseHash(r.Proof.Root)
	if err != nil {
		return fmt.Errorf("%w: root: %v", ErrVerify, err)
	}
	path, err := parseHashes(r.Proof.Hashes)
	if err != nil {
		return fmt.Errorf("%w: proof: %v", ErrVerify, err)
	}
	if err := chain.VerifyInclusion(r.Proof.LeafIndex, r.Proof.TreeSize, leaf, path, root); err != nil {
		return fmt.Errorf("%w: %v", ErrVerify, err)
	}
	return nil
}

// VerifyTxAgainstHead checks r with VerifyTx and that its proof is for the
// log of head (same size and root).
func VerifyTxAgainstHead(r TxResponse, head Head) error {
	if err := VerifyTx(r); err != nil {
		return err
	}
	if r.Proof.TreeSize != head.LogSize || r.Proof.Root != head.LogRoot {
		return fmt.Errorf("%w: proof is for log size %d root %s, head %d has size %d root %s", ErrVerify, r.Proof.TreeSize, r.Proof.Root, head.Height, head.LogSize, head.LogRoot)
	}
	return nil
}

// VerifyConsistency checks that the proof shows the log of size From with
// root rootFrom is a prefix of the log of size To with root rootTo, where
// both roots come from heads the caller trusts.
func VerifyConsistency(p ConsistencyResponse, rootFrom, rootTo string) error {
	if p.RootFrom != rootFrom || p.RootTo != rootTo {
		return fmt.Errorf("%w: proof roots %s/%s differ from trusted %s/%s", ErrVerify, p.RootFrom, p.RootTo, rootFrom, rootTo)
	}
	r1, err1 := chain.ParseHash(p.RootFrom)
	r2, err2 := chain.ParseHash(p.RootTo)
	path, err3 := parseHashes(p.Hashes)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("%w: malformed proof", ErrVerify)
	}
	if p.From == 0 {
		return nil // the empty log is a prefix of every log
	}
	if err := chain.VerifyConsistency(p.From, p.To, r1, r2, path); err != nil {
		return fmt.Errorf("%w: %v", ErrVerify, err)
	}
	return nil
}

// ChainReport is the result of verifying one group's chain over the API.
type ChainReport struct {
	Group  int
	Blocks uint64
	Txs    uint64
	Head   Head
}

// VerifyGroup downloads group g's whole chain and verifies it from height
// 1 with chain.VerifyChain, and checks that it ends at the head the server
// reports (read at level default first, so the chain read is at least as
// new). A *chain.VerifyError names the first bad height.
func (c *Client) VerifyGroup(ctx context.Context, g int) (ChainReport, error) {
	head, err := c.Head(ctx, g, "")
	if err != nil {
		return ChainReport{}, err
	}
	return c.VerifyGroupTo(ctx, g, head)
}

// VerifyGroupTo verifies group g's chain from height 1 up to head (one the
// caller already holds, e.g. a signed head it checked) and that it ends
// exactly there: same height, same block hash.
func (c *Client) VerifyGroupTo(ctx context.Context, g int, head Head) (ChainReport, error) {
	const page = 200
	var fetchErr error
	blocks := func(yield func(uint64, chain.LeafBlock) bool) {
		for from := uint64(1); from <= head.Height; {
			bs, err := c.Blocks(ctx, g, from, page, "")
			if err != nil {
				fetchErr = err
				return
			}
			if len(bs) == 0 {
				return
			}
			for _, b := range bs {
				if b.Height > head.Height {
					return
				}
				if !yield(b.Height, b.LeafBlock()) {
					return
				}
				from = b.Height + 1
			}
		}
	}
	rep, err := chain.VerifyLeafChain(uint32(g), iter.Seq2[uint64, chain.LeafBlock](blocks))
	if fetchErr != nil {
		return ChainReport{}, fetchErr
	}
	out := ChainReport{Group: g, Blocks: rep.Blocks, Txs: rep.Txs}
	if err != nil {
		return out, err
	}
	if rep.Blocks > 0 {
		out.Head = HeadFromHeader(rep.Head)
	}
	if rep.Head.Height != head.Height || (head.Height > 0 && out.Head.Hash != head.Hash) {
		return out, fmt.Errorf("%w: chain ends at height %d (%s), server head is %d (%s)", ErrVerify, rep.Head.Height, out.Head.Hash, head.Height, head.Hash)
	}
	return out, nil
}
