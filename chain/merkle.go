// Merkle trees as defined by RFC 6962 and RFC 9162 §2.1: the hashes, the
// Merkle Tree Hash (MTH) and the reference proof constructions over an
// in-memory slice of leaf hashes. Proofs built from stored perfect-subtree
// nodes are in merkle_proof.go, the verifiers in merkle_verify.go and the
// incremental append-only state in merkle_frontier.go.

package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Errors returned by the Merkle tree functions. They are wrapped with
// context; test for them with errors.Is.
var (
	// ErrInvalidProof means an inclusion or consistency proof does not prove
	// what it was checked against: wrong length, wrong hashes or wrong roots.
	// Every rejection by a verifier wraps it.
	ErrInvalidProof = errors.New("chain: invalid proof")

	// ErrBadRange means a leaf index or tree size cannot occur: an index not
	// below the tree size, or a first tree size larger than the second.
	// Verifiers wrap it together with ErrInvalidProof.
	ErrBadRange = errors.New("chain: index or size out of range")

	// ErrNodeRead means a NodeReader failed to return a node. The reader's
	// own error is wrapped as well, with the level and index asked for.
	ErrNodeRead = errors.New("chain: read merkle node")

	// ErrMalformedHash means a textual hash is not exactly 64 hex digits.
	ErrMalformedHash = errors.New("chain: malformed hash")

	// ErrMalformedFrontier means a Frontier's binary form is invalid.
	ErrMalformedFrontier = errors.New("chain: malformed frontier encoding")
)

// Domain-separation prefixes of RFC 6962 §2.1.
const (
	merkleLeafPrefix = 0x00
	merkleNodePrefix = 0x01
)

// Hash is a SHA-256 digest: a leaf hash, an interior node hash or a tree root.
// The zero Hash is not the hash of anything in particular; in particular it is
// not the root of the empty tree (see EmptyRoot).
type Hash [sha256.Size]byte

// String returns the hash as 64 lowercase hex digits.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// ParseHash parses 64 hex digits (either case) as a Hash. Any other input
// returns an error wrapping ErrMalformedHash. ParseHash(h.String()) == h.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrMalformedHash, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return h, nil
}

// LeafHash returns the RFC 6962 leaf hash SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	d := sha256.New()
	d.Write([]byte{merkleLeafPrefix})
	d.Write(data)
	var h Hash
	d.Sum(h[:0])
	return h
}

// NodeHash returns the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func NodeHash(l, r Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = merkleNodePrefix
	copy(buf[1:], l[:])
	copy(buf[1+sha256.Size:], r[:])
	return sha256.Sum256(buf[:])
}

// merkleEmptyRoot is SHA-256 of the empty string.
var merkleEmptyRoot = Hash(sha256.Sum256(nil))

// EmptyRoot returns the root of the tree with no leaves, SHA-256("").
func EmptyRoot() Hash {
	return merkleEmptyRoot
}

// RootFromLeaves returns the Merkle Tree Hash of the given leaf hashes
// (RFC 9162 §2.1.1); for no leaves that is EmptyRoot(). The leaves are hashes
// already (LeafHash), not raw data. It costs len(leaves)-1 node hashes.
func RootFromLeaves(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return EmptyRoot()
	}
	return merkleMTH(leaves)
}

// merkleMTH is MTH(D[n]) for n >= 1, split as the RFC does.
func merkleMTH(leaves []Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := merkleSplit(uint64(len(leaves)))
	return NodeHash(merkleMTH(leaves[:k]), merkleMTH(leaves[k:]))
}

// merkleSplit returns the largest power of two smaller than n, for n >= 2.
func merkleSplit(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// InclusionProofFromLeaves returns the audit path PATH(index, D[n]) of
// RFC 9162 §2.1.3.1 for the tree of all the given leaf hashes, ordered from
// the leaf's sibling up to the root's child. An index not below len(leaves)
// returns an error wrapping ErrBadRange. It is the reference construction:
// it rehashes O(len(leaves)) nodes; use InclusionProof for stored trees.
func InclusionProofFromLeaves(index uint64, leaves []Hash) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("chain: inclusion proof for leaf %d of %d: %w", index, len(leaves), ErrBadRange)
	}
	return merklePath(index, leaves), nil
}

// merklePath is PATH(m, D[n]) for m < n.
func merklePath(m uint64, leaves []Hash) []Hash {
	n := uint64(len(leaves))
	if n == 1 {
		return nil
	}
	k := merkleSplit(n)
	if m < k {
		return append(merklePath(m, leaves[:k]), merkleMTH(leaves[k:]))
	}
	return append(merklePath(m-k, leaves[k:]), merkleMTH(leaves[:k]))
}

// ConsistencyProofFromLeaves returns the consistency proof PROOF(size1, D[n])
// of RFC 9162 §2.1.4.1 between the tree of the first size1 leaf hashes and the
// tree of all of them. For size1 == 0 or size1 == len(leaves) the proof is
// empty. A size1 above len(leaves) returns an error wrapping ErrBadRange. It
// is the reference construction: it rehashes O(len(leaves)) nodes; use
// ConsistencyProof for stored trees.
func ConsistencyProofFromLeaves(size1 uint64, leaves []Hash) ([]Hash, error) {
	n := uint64(len(leaves))
	switch {
	case size1 > n:
		return nil, fmt.Errorf("chain: consistency proof from size %d to %d: %w", size1, n, ErrBadRange)
	case size1 == 0 || size1 == n:
		return nil, nil
	}
	return merkleSubproof(size1, leaves, true), nil
}

// merkleSubproof is SUBPROOF(m, D[n], b) for 0 < m <= n.
func merkleSubproof(m uint64, leaves []Hash, b bool) []Hash {
	n := uint64(len(leaves))
	if m == n {
		if b {
			return nil
		}
		return []Hash{merkleMTH(leaves)}
	}
	k := merkleSplit(n)
	if m <= k {
		return append(merkleSubproof(m, leaves[:k], b), merkleMTH(leaves[k:]))
	}
	return append(merkleSubproof(m-k, leaves[k:], false), merkleMTH(leaves[:k]))
}
