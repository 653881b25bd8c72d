package faults

import (
	"fmt"
	"sort"

	"qledger/api/client"
)

// ChainSafety is what CheckChain found.
type ChainSafety struct {
	// Heads counts the heads read; Signed those that carried a signature;
	// Empty those of the empty chain (height 0: nothing to sign).
	Heads, Signed, Empty int
	Problems             []string
}

// OK reports whether no violation was found.
func (c ChainSafety) OK() bool { return len(c.Problems) == 0 }

// CheckChain holds every head the clients read, at any level and from any
// side of any partition, against the final log: no two heads of one
// height differ, each lies on the final chain (its hash is the final
// block's at its height), and each signed head's signature passes
// verifySig (if not nil); with verifySig, a head of a non-empty chain
// must be signed (every node of a cluster with a CA signs the heads it
// serves). A head on the final chain is consistent with
// every other, so no pairwise consistency proof is needed beyond the
// final chain's own verification.
func CheckChain(ops []Op, log Log, verifySig func(client.Head) error) ChainSafety {
	var c ChainSafety
	seen := map[uint64]client.Head{}
	forked := map[uint64]bool{}
	for _, op := range ops {
		if op.Kind != KindReadHead || op.Outcome != OK {
			continue
		}
		h := op.Head
		c.Heads++
		if len(h.Signature) > 0 {
			c.Signed++
			if verifySig != nil {
				if err := verifySig(h); err != nil {
					c.Problems = append(c.Problems, fmt.Sprintf("head %d from %s: bad signature: %v", h.Height, op.Node, err))
				}
			}
		}
		if h.Height == 0 {
			c.Empty++
			continue
		}
		if len(h.Signature) == 0 && verifySig != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("head %d from %s at %s level is not signed", h.Height, op.Node, op.Level))
		}
		if prev, ok := seen[h.Height]; ok && prev.Hash != h.Hash && !forked[h.Height] {
			forked[h.Height] = true
			c.Problems = append(c.Problems, fmt.Sprintf("fork at height %d: heads %.16s (signer %.12s) and %.16s (signer %.12s)", h.Height, prev.Hash, prev.Signer, h.Hash, h.Signer))
		}
		seen[h.Height] = h
		if want, ok := log.Hashes[h.Height]; !ok || want != h.Hash {
			c.Problems = append(c.Problems, fmt.Sprintf("head %d %.16s read from %s at %s level is not on the final chain", h.Height, h.Hash, op.Node, op.Level))
		}
	}
	sort.Strings(c.Problems)
	return c
}
