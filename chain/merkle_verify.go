// Verification of RFC 9162 inclusion and consistency proofs.

package chain

import "fmt"

// VerifyInclusion checks that proof shows leaf to be the leaf hash at
// leafIndex in the tree of treeSize leaves whose root is root (RFC 9162
// §2.1.3.2). It returns nil for the audit path InclusionProof produces for
// such a tree; any other input (short of a SHA-256 collision) returns an error
// wrapping ErrInvalidProof, and also ErrBadRange if leafIndex >= treeSize.
// It never panics, whatever the input, and does at most len(proof) hashes.
func VerifyInclusion(leafIndex, treeSize uint64, leaf Hash, proof []Hash, root Hash) error {
	got, err := RootFromInclusion(leafIndex, treeSize, leaf, proof)
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: leaf %d of %d: computed root %s, want %s", ErrInvalidProof, leafIndex, treeSize, got, root)
	}
	return nil
}

// RootFromInclusion returns the root of the tree of treeSize leaves implied by
// an inclusion proof of leaf at leafIndex (RFC 9162 §2.1.3.2, steps 1 to 4).
// A proof of the wrong length for (leafIndex, treeSize) returns an error
// wrapping ErrInvalidProof, and also ErrBadRange if leafIndex >= treeSize.
// Trusting the returned root is the caller's business: compare it with a
// root known by other means, or use VerifyInclusion.
func RootFromInclusion(leafIndex, treeSize uint64, leaf Hash, proof []Hash) (Hash, error) {
	if leafIndex >= treeSize {
		return Hash{}, fmt.Errorf("%w: leaf index %d not below tree size %d: %w", ErrInvalidProof, leafIndex, treeSize, ErrBadRange)
	}
	fn, sn := leafIndex, treeSize-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, fmt.Errorf("%w: leaf %d of %d: proof longer than %d", ErrInvalidProof, leafIndex, treeSize, len(proof))
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, fmt.Errorf("%w: leaf %d of %d: proof of %d hashes is too short", ErrInvalidProof, leafIndex, treeSize, len(proof))
	}
	return r, nil
}

// VerifyConsistency checks that proof shows the tree of size1 leaves with root
// root1 to be a prefix of the tree of size2 leaves with root root2 (RFC 9162
// §2.1.4.2). It returns nil for the proof ConsistencyProof produces for such
// trees; any other input (short of a SHA-256 collision) returns an error
// wrapping ErrInvalidProof, and also ErrBadRange if size1 > size2.
//
// Two cases are outside the RFC's algorithm, decided as in the RFC 6962 test
// vectors and the transparency-dev verifier: if size1 == size2 the proof must
// be empty and root1 must equal root2; if size1 == 0 the proof must be empty
// and any root1 and root2 are accepted, since every tree extends the empty
// one (root1 is not compared with EmptyRoot).
// It never panics, whatever the input, and does at most 2*len(proof) hashes.
func VerifyConsistency(size1, size2 uint64, root1, root2 Hash, proof []Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: size1 %d above size2 %d: %w", ErrInvalidProof, size1, size2, ErrBadRange)
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("%w: sizes equal (%d) but proof has %d hashes", ErrInvalidProof, size1, len(proof))
		}
		if root1 != root2 {
			return fmt.Errorf("%w: sizes equal (%d) but roots differ: %s, %s", ErrInvalidProof, size1, root1, root2)
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: size1 is 0 but proof has %d hashes", ErrInvalidProof, len(proof))
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty proof from size %d to %d", ErrInvalidProof, size1, size2)
	}

	// Step 2: if size1 is a power of two its root is the first node of the
	// path; it is not sent, since the verifier knows it.
	if size1&(size1-1) == 0 {
		proof = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: from size %d to %d: proof too long", ErrInvalidProof, size1, size2)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	switch {
	case sn != 0:
		return fmt.Errorf("%w: from size %d to %d: proof too short", ErrInvalidProof, size1, size2)
	case fr != root1:
		return fmt.Errorf("%w: from size %d to %d: computed first root %s, want %s", ErrInvalidProof, size1, size2, fr, root1)
	case sr != root2:
		return fmt.Errorf("%w: from size %d to %d: computed second root %s, want %s", ErrInvalidProof, size1, size2, sr, root2)
	}
	return nil
}
