package cluster

import (
	"context"
	"fmt"

	"qledger/chain"
	"qledger/fsm"
)

// headerAtReq asks a replica for the hash of its block header at Height.
type headerAtReq struct {
	Height uint64 `json:"height"`
}

// headerAtResp is its answer: Head is the replica's head height; OK is
// false when it holds no block at Height yet (or is alarmed).
type headerAtResp struct {
	Head uint64     `json:"head"`
	Hash chain.Hash `json:"hash"`
	OK   bool       `json:"ok"`
}

// headerAt answers headerAtReq from the local store. An alarmed replica
// does not answer, so it never outvotes a healthy one.
func (n *Node) headerAt(height uint64) (headerAtResp, error) {
	var out headerAtResp
	if n.chainAlarm() != nil {
		return out, nil
	}
	head, ok, err := n.store.Head()
	if err != nil || !ok {
		return out, err
	}
	out.Head = head.Height
	if height == 0 || height > head.Height {
		return out, nil
	}
	raw, err := n.store.Block(height)
	if err != nil {
		return out, nil
	}
	h, err := chain.DecodeHeader(raw[:min(len(raw), chain.HeaderSize)])
	if err != nil {
		return out, nil
	}
	out.Hash, out.OK = h.Hash(), true
	return out, nil
}

// compareWithPeers compares this replica's header hash at the height
// compareLag blocks below its head with every other replica of its group.
// When a strict majority of the group's known members hold another hash
// than this one, it binary-searches the first height at
// which this replica's header differs from theirs and raises the alarm
// (source "compare"). Once two chains part, every later header differs
// (each links to the one below), so the search finds where they part: a
// fork, or a store replaced by another chain. Damage confined to an old
// block, and transaction bytes, are the scrub's to find.
func (n *Node) compareWithPeers(ctx context.Context) {
	if n.chainAlarm() != nil {
		return
	}
	head, ok, err := n.store.Head()
	if err != nil || !ok || head.Height <= compareLag {
		return
	}
	h := head.Height - compareLag
	differs, err := n.outvoted(ctx, h)
	if err != nil || !differs {
		return
	}
	lo, hi := uint64(1), h // the first differing height is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		d, err := n.outvoted(ctx, mid)
		if err != nil {
			return
		}
		if d {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	n.raiseAlarm(fsm.Damage{Height: lo, What: fmt.Sprintf("block header at height %d differs from the one the group's other replicas hold", lo)}, "compare")
}

// compareLag keeps comparisons a few blocks behind the head, which every
// replica that keeps up has applied.
const compareLag = 4

// outvoted reports whether a strict majority of the group's members hold
// another header at height than this replica does. Members that do not
// hold the height or do not answer count for neither side.
func (n *Node) outvoted(ctx context.Context, height uint64) (bool, error) {
	mine, err := n.headerAt(height)
	if err != nil || !mine.OK {
		return false, err
	}
	members := n.dir.inGroup(n.group)
	votes := map[chain.Hash]int{mine.Hash: 1}
	for _, m := range members {
		if m.ID == n.info.ID {
			continue
		}
		var r headerAtResp
		if err := n.client.call(ctx, m.Addr, mHeaderAt, headerAtReq{Height: height}, &r); err != nil || !r.OK {
			continue
		}
		votes[r.Hash]++
	}
	for h, c := range votes {
		if h != mine.Hash && 2*c > len(members) {
			return true, nil
		}
	}
	return false, nil
}
