// The incremental state of an append-only Merkle log.

package chain

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// merkleFrontierVersion is the first byte of a Frontier's binary form.
const merkleFrontierVersion = 1

// merkleFrontierHeader is the length of the binary form before the hashes:
// the version byte and the big-endian size.
const merkleFrontierHeader = 1 + 8

// Frontier is the compact state of an append-only log of leaf hashes: its
// size and the roots of the perfect subtrees on its right border, one per set
// bit of the size (at most 64), largest (leftmost) first. It is enough to
// compute the root and to keep appending, in O(log n) time and fixed space.
//
// The zero Frontier is the empty log, ready to use. A Frontier holds no
// pointers, so assigning it (or Clone) copies it completely, and two
// Frontiers of the same log compare equal with ==. It is not safe
// for concurrent use by several goroutines if one of them appends.
type Frontier struct {
	size   uint64
	hashes [64]Hash // hashes[:bits.OnesCount64(size)] are in use
}

// FrontierAt returns the Frontier of the first treeSize leaves, reading its
// at most 64 perfect nodes from r. Appending to it continues that log.
func FrontierAt(treeSize uint64, r NodeReader) (Frontier, error) {
	var buf [64]merkleNodeID
	var f Frontier
	for i, id := range merkleRangeNodes(0, treeSize, buf[:0]) {
		h, err := merkleRead(r, id)
		if err != nil {
			return Frontier{}, fmt.Errorf("chain: frontier at size %d: %w", treeSize, err)
		}
		f.hashes[i] = h
	}
	f.size = treeSize
	return f, nil
}

// Size returns the number of leaves appended so far.
func (f *Frontier) Size() uint64 {
	return f.size
}

// Root returns the Merkle Tree Hash of all leaves appended so far, equal to
// RootFromLeaves over them (EmptyRoot() when there are none). It does at most
// 63 hashes.
func (f *Frontier) Root() Hash {
	n := bits.OnesCount64(f.size)
	if n == 0 {
		return EmptyRoot()
	}
	h := f.hashes[n-1]
	for i := n - 2; i >= 0; i-- {
		h = NodeHash(f.hashes[i], h)
	}
	return h
}

// Append adds a leaf hash (LeafHash of the entry) at index Size(). For every
// perfect subtree that the leaf completes, it calls emit(level, index, hash)
// with the node's coordinates as NodeReader defines them, bottom-up: first
// the leaf itself at level 0, then each new ancestor. Storing every emitted
// node is what RootAt, InclusionProof and ConsistencyProof need to serve any
// tree size up to Size(). emit may be nil; it must not call f.
//
// Append must not be called when Size() is math.MaxUint64: the next size has
// no representation, and Append panics rather than corrupt the log.
func (f *Frontier) Append(leaf Hash, emit func(level uint8, index uint64, h Hash)) {
	if f.size == math.MaxUint64 {
		panic("chain: frontier is full")
	}
	n := bits.OnesCount64(f.size)
	h, index := leaf, f.size
	var level uint8
	if emit != nil {
		emit(level, index, h)
	}
	// Each trailing one bit of the old size is a perfect subtree of the same
	// height just left of the new node: merge with it.
	for index&1 == 1 {
		n--
		h = NodeHash(f.hashes[n], h)
		f.hashes[n] = Hash{} // unused slots stay zero, so == compares logs
		level++
		index >>= 1
		if emit != nil {
			emit(level, index, h)
		}
	}
	f.hashes[n] = h
	f.size++
}

// Clone returns an independent copy of f.
func (f *Frontier) Clone() Frontier {
	return *f
}

// AppendBinary appends the binary form of f to b (see MarshalBinary).
func (f *Frontier) AppendBinary(b []byte) ([]byte, error) {
	n := bits.OnesCount64(f.size)
	b = append(b, merkleFrontierVersion)
	b = binary.BigEndian.AppendUint64(b, f.size)
	for i := range n {
		b = append(b, f.hashes[i][:]...)
	}
	return b, nil
}

// MarshalBinary returns the canonical binary form of f: a version byte (1),
// the size as 8 big-endian bytes, then the popcount(size) subtree roots of
// 32 bytes each, largest first. Equal frontiers have equal forms. It never
// fails.
func (f *Frontier) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(make([]byte, 0, merkleFrontierHeader+bits.OnesCount64(f.size)*len(Hash{})))
}

// UnmarshalBinary sets f from the form MarshalBinary produces. Anything else
// (an unknown version, a short input, a number of hashes other than
// popcount(size), trailing bytes) returns an error wrapping
// ErrMalformedFrontier and leaves f unchanged.
func (f *Frontier) UnmarshalBinary(b []byte) error {
	if len(b) < merkleFrontierHeader {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformedFrontier, len(b), merkleFrontierHeader)
	}
	if b[0] != merkleFrontierVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrMalformedFrontier, b[0], merkleFrontierVersion)
	}
	size := binary.BigEndian.Uint64(b[1:merkleFrontierHeader])
	n := bits.OnesCount64(size)
	if want := merkleFrontierHeader + n*len(Hash{}); len(b) != want {
		return fmt.Errorf("%w: size %d needs %d bytes, got %d", ErrMalformedFrontier, size, want, len(b))
	}
	var g Frontier
	g.size = size
	for i := range n {
		copy(g.hashes[i][:], b[merkleFrontierHeader+i*len(Hash{}):])
	}
	*f = g
	return nil
}
