package chain_test

import (
	"fmt"

	"qledger/chain"
)

// merkleExampleStore keeps the nodes a Frontier emits; it is a NodeReader.
type merkleExampleStore map[[2]uint64]chain.Hash

func (s merkleExampleStore) Node(level uint8, index uint64) (chain.Hash, error) {
	h, ok := s[[2]uint64{uint64(level), index}]
	if !ok {
		return chain.Hash{}, fmt.Errorf("node (%d, %d) not stored", level, index)
	}
	return h, nil
}

func ExampleFrontier() {
	store := merkleExampleStore{}
	keep := func(level uint8, index uint64, h chain.Hash) { store[[2]uint64{uint64(level), index}] = h }

	var log chain.Frontier
	for _, entry := range []string{"alpha", "beta", "gamma", "delta", "epsilon"} {
		log.Append(chain.LeafHash([]byte(entry)), keep)
	}
	fmt.Println("size:", log.Size(), "root:", log.Root())

	// Prove that "gamma" is leaf 2 of the log.
	proof, err := chain.InclusionProof(2, log.Size(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = chain.VerifyInclusion(2, log.Size(), chain.LeafHash([]byte("gamma")), proof, log.Root())
	fmt.Println("inclusion proof of", len(proof), "hashes, error:", err)

	// Prove that the log of 3 entries is a prefix of the log of 5.
	root3, _ := chain.RootAt(3, store)
	proof, _ = chain.ConsistencyProof(3, 5, store)
	err = chain.VerifyConsistency(3, 5, root3, log.Root(), proof)
	fmt.Println("consistency proof of", len(proof), "hashes, error:", err)

	// Output:
	// size: 5 root: 4fadaf65230be6227c00da655ea088f1038a3b3443350b3e6cf7062f2e03963a
	// inclusion proof of 3 hashes, error: <nil>
	// consistency proof of 4 hashes, error: <nil>
}
