package chain

import "testing"

func BenchmarkFrontierAppend(b *testing.B) {
	leaf := LeafHash([]byte("entry"))
	var f Frontier
	var emitted int
	emit := func(uint8, uint64, Hash) { emitted++ }
	for b.Loop() {
		f.Append(leaf, emit)
	}
	b.ReportMetric(float64(emitted)/float64(f.Size()), "nodes/op")
}

func BenchmarkInclusionProof(b *testing.B) {
	const size = 1_000_000 // not a power of two: proofs include a recomputed border node
	store, _ := merkleBuildStore(merkleTestLeaves(size))
	r := merkleFakeReader{node: func(level uint8, index uint64) (Hash, error) {
		h, ok := store[merkleNodeKey{level, index}]
		if !ok {
			return Hash{}, errMerkleMissing
		}
		return h, nil
	}}
	var i uint64
	for b.Loop() {
		i = (i + 7919) % size
		if _, err := InclusionProof(i, size, r); err != nil {
			b.Fatal(err)
		}
	}
}
