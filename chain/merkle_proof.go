// Roots and proofs for any tree size, read from stored perfect-subtree nodes.
//
// A tree of size n is covered by at most 64 perfect subtrees, one per set
// bit of n. The nodes on the right border of a tree whose size is not a power
// of two ("ephemeral" nodes) change as leaves are appended, so they are never
// stored: each is recomputed from the perfect nodes under it, the way
// Trillian's compact ranges do. Every proof therefore costs O(log n) reads and
// hashes, and equals the reference *FromLeaves construction.

package chain

import (
	"fmt"
	"math/bits"
)

// NodeReader returns stored hashes of perfect subtrees. Node (level, index)
// covers the leaves [index<<level, (index+1)<<level); level 0 holds the leaf
// hashes. The functions in this file only ask for nodes that lie entirely
// within the tree size they were given, so a store that has every node a
// Frontier has emitted can serve any size up to its own. An error is passed
// on, wrapped with ErrNodeRead and the node's coordinates.
//
// The functions taking a NodeReader are safe for concurrent use if the
// reader is.
type NodeReader interface {
	Node(level uint8, index uint64) (Hash, error)
}

// merkleNodeID names a perfect subtree: leaves [index<<level, (index+1)<<level).
type merkleNodeID struct {
	level uint8
	index uint64
}

// merkleRangeNodes appends to dst the fewest perfect nodes that exactly cover
// the leaves [begin, end), from left to right.
func merkleRangeNodes(begin, end uint64, dst []merkleNodeID) []merkleNodeID {
	for begin < end {
		level := bits.Len64(end-begin) - 1
		if begin != 0 {
			level = min(level, bits.TrailingZeros64(begin))
		}
		dst = append(dst, merkleNodeID{level: uint8(level), index: begin >> level})
		begin += 1 << level
	}
	return dst
}

// merkleRead reads one node, converting a failure to ErrNodeRead.
func merkleRead(r NodeReader, id merkleNodeID) (Hash, error) {
	h, err := r.Node(id.level, id.index)
	if err != nil {
		return Hash{}, fmt.Errorf("%w: level %d index %d: %w", ErrNodeRead, id.level, id.index, err)
	}
	return h, nil
}

// merkleRangeRoot returns MTH of the leaves [begin, end), begin < end, for a
// range whose perfect cover shrinks from left to right: begin is 0 or a
// multiple of a power of two at least end-begin. The tree [0, n) and the
// right-border subtrees of RFC 6962 are such ranges.
func merkleRangeRoot(r NodeReader, begin, end uint64) (Hash, error) {
	var buf [64]merkleNodeID
	ids := merkleRangeNodes(begin, end, buf[:0])
	h, err := merkleRead(r, ids[len(ids)-1])
	if err != nil {
		return Hash{}, err
	}
	for i := len(ids) - 2; i >= 0; i-- {
		l, err := merkleRead(r, ids[i])
		if err != nil {
			return Hash{}, err
		}
		h = NodeHash(l, h)
	}
	return h, nil
}

// RootAt returns the root of the tree of the first treeSize leaves, reading
// at most 64 perfect nodes (EmptyRoot() for treeSize 0). It equals
// RootFromLeaves over those leaves.
func RootAt(treeSize uint64, r NodeReader) (Hash, error) {
	if treeSize == 0 {
		return EmptyRoot(), nil
	}
	h, err := merkleRangeRoot(r, 0, treeSize)
	if err != nil {
		return Hash{}, fmt.Errorf("chain: root of tree size %d: %w", treeSize, err)
	}
	return h, nil
}

// InclusionProof returns the audit path of leaf leafIndex in the tree of the
// first treeSize leaves, exactly as InclusionProofFromLeaves does, from
// O(log treeSize) perfect nodes. leafIndex >= treeSize returns an error
// wrapping ErrBadRange.
func InclusionProof(leafIndex, treeSize uint64, r NodeReader) ([]Hash, error) {
	if leafIndex >= treeSize {
		return nil, fmt.Errorf("chain: inclusion proof for leaf %d of %d: %w", leafIndex, treeSize, ErrBadRange)
	}
	proof, err := merklePathFromNodes(r, 0, leafIndex, treeSize, nil)
	if err != nil {
		return nil, fmt.Errorf("chain: inclusion proof for leaf %d of %d: %w", leafIndex, treeSize, err)
	}
	return proof, nil
}

// ConsistencyProof returns the consistency proof between the trees of the
// first size1 and size2 leaves, exactly as ConsistencyProofFromLeaves does,
// from O(log size2) perfect nodes. The proof is empty for size1 == 0 or
// size1 == size2; size1 > size2 returns an error wrapping ErrBadRange.
func ConsistencyProof(size1, size2 uint64, r NodeReader) ([]Hash, error) {
	switch {
	case size1 > size2:
		return nil, fmt.Errorf("chain: consistency proof from size %d to %d: %w", size1, size2, ErrBadRange)
	case size1 == 0 || size1 == size2:
		return nil, nil
	}
	// The largest perfect subtree ending at size1 is where the proof starts.
	// Unless it is the whole first tree (size1 a power of two, whose root the
	// verifier already has), its hash is the proof's first element; then come
	// the siblings on its path to the root of the second tree.
	level := uint8(bits.TrailingZeros64(size1))
	index := (size1 - 1) >> level
	var proof []Hash
	if index != 0 {
		h, err := merkleRead(r, merkleNodeID{level: level, index: index})
		if err != nil {
			return nil, fmt.Errorf("chain: consistency proof from size %d to %d: %w", size1, size2, err)
		}
		proof = append(make([]Hash, 0, 2*bits.Len64(size2)), h)
	}
	proof, err := merklePathFromNodes(r, level, index, size2, proof)
	if err != nil {
		return nil, fmt.Errorf("chain: consistency proof from size %d to %d: %w", size1, size2, err)
	}
	return proof, nil
}

// merklePathFromNodes appends to dst the audit path of the perfect node
// (level, index) in the tree of size leaves: the hashes of its siblings from
// the bottom up, where a sibling on the right border is recomputed from the
// perfect nodes under it. The node must lie within the tree.
func merklePathFromNodes(r NodeReader, level uint8, index, size uint64, dst []Hash) ([]Hash, error) {
	// The fork is the highest ancestor of the node that is still a perfect
	// subtree of the tree: below it every sibling is perfect; its own sibling
	// (if any) is the right border [end, size); above it the path runs along
	// the right border, whose siblings are the perfect nodes covering
	// [0, begin), met from the smallest up.
	inner := bits.Len64(index^(size>>level)) - 1
	forkLevel := int(level) + inner
	begin := (index >> inner) << forkLevel
	end := begin + 1<<forkLevel

	var buf [64]merkleNodeID
	left := merkleRangeNodes(0, begin, buf[:0])
	if dst == nil {
		dst = make([]Hash, 0, inner+1+len(left))
	}
	for i := range inner {
		h, err := merkleRead(r, merkleNodeID{level: level + uint8(i), index: (index >> i) ^ 1})
		if err != nil {
			return nil, err
		}
		dst = append(dst, h)
	}
	if end < size {
		h, err := merkleRangeRoot(r, end, size)
		if err != nil {
			return nil, err
		}
		dst = append(dst, h)
	}
	for i := len(left) - 1; i >= 0; i-- {
		h, err := merkleRead(r, left[i])
		if err != nil {
			return nil, err
		}
		dst = append(dst, h)
	}
	if len(dst) == 0 {
		return nil, nil // as the reference constructions return it
	}
	return dst, nil
}
