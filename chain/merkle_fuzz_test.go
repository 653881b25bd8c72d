package chain

import (
	"errors"
	"testing"
)

// merkleFuzzHash makes a Hash of any bytes: truncated or zero-padded.
func merkleFuzzHash(b []byte) Hash {
	var h Hash
	copy(h[:], b)
	return h
}

// merkleFuzzProof cuts b into 32-byte hashes, dropping a short tail.
func merkleFuzzProof(b []byte) []Hash {
	var p []Hash
	for ; len(b) >= 32; b = b[32:] {
		p = append(p, merkleFuzzHash(b))
	}
	return p
}

// merkleFuzzConcat joins hashes into the byte form merkleFuzzProof reads.
func merkleFuzzConcat(hs ...Hash) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func FuzzVerifyInclusion(f *testing.F) {
	leaves := merkleTestLeaves(7)
	root := RootFromLeaves(leaves)
	for i := range leaves {
		p, _ := InclusionProofFromLeaves(uint64(i), leaves)
		f.Add(uint64(i), uint64(7), leaves[i][:], merkleFuzzConcat(p...), root[:])
	}
	f.Add(uint64(0), uint64(0), []byte{}, []byte{}, []byte{})
	f.Add(^uint64(0), ^uint64(0), []byte{1}, make([]byte, 64*32), []byte{2})
	f.Add(^uint64(0)-1, ^uint64(0), []byte{1}, make([]byte, 64*32), []byte{2})
	f.Fuzz(func(t *testing.T, index, size uint64, leaf, proof, root []byte) {
		p := merkleFuzzProof(proof)
		err := VerifyInclusion(index, size, merkleFuzzHash(leaf), p, merkleFuzzHash(root))
		if err != nil && !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("error %v does not wrap ErrInvalidProof", err)
		}
		if err == nil && (index >= size || len(p) > 64) {
			t.Fatalf("accepted leaf %d of %d with %d hashes", index, size, len(p))
		}
	})
}

func FuzzVerifyConsistency(f *testing.F) {
	leaves := merkleTestLeaves(9)
	for size1 := range 10 {
		p, _ := ConsistencyProofFromLeaves(uint64(size1), leaves)
		r1, r2 := RootFromLeaves(leaves[:size1]), RootFromLeaves(leaves)
		f.Add(uint64(size1), uint64(9), r1[:], r2[:], merkleFuzzConcat(p...))
	}
	f.Add(uint64(0), uint64(0), []byte{}, []byte{}, []byte{})
	f.Add(^uint64(0)-1, ^uint64(0), []byte{1}, []byte{2}, make([]byte, 130*32))
	f.Add(uint64(1)<<63, ^uint64(0), []byte{1}, []byte{2}, make([]byte, 64*32))
	f.Fuzz(func(t *testing.T, size1, size2 uint64, root1, root2, proof []byte) {
		p := merkleFuzzProof(proof)
		err := VerifyConsistency(size1, size2, merkleFuzzHash(root1), merkleFuzzHash(root2), p)
		if err != nil && !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("error %v does not wrap ErrInvalidProof", err)
		}
		if err == nil && (size1 > size2 || len(p) > 128) {
			t.Fatalf("accepted sizes %d, %d with %d hashes", size1, size2, len(p))
		}
	})
}
