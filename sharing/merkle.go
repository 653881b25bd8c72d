package sharing

import "crypto/sha256"

// A Merkle tree over the n shard hashes of a dispersal split, hashed as in
// RFC 6962 (leaf H(0x00||d), node H(0x01||l||r), left subtree the largest
// power of two below the size), with inclusion proofs as in RFC 9162
// section 2.1.3. Every share carries the root and its own audit path, so a
// reader holding any t shares can check each of them against the root that
// the manifest tag authenticates.

// maxProofLen is the audit path length bound for MaxShares leaves.
const maxProofLen = 8

func merkleLeaf(d []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(d)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func merkleNode(l, r [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// splitPoint is the largest power of two strictly below n (n >= 2).
func splitPoint(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// merkleRoot is MTH over already-hashed leaves (len >= 1).
func merkleRoot(leaves [][32]byte) [32]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return merkleNode(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

// merklePath is PATH(m, D[n]) over already-hashed leaves.
func merklePath(m int, leaves [][32]byte) [][32]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := splitPoint(len(leaves))
	if m < k {
		return append(merklePath(m, leaves[:k]), merkleRoot(leaves[k:]))
	}
	return append(merklePath(m-k, leaves[k:]), merkleRoot(leaves[:k]))
}

// merklePathLen is the length of PATH(m, D[n]).
func merklePathLen(m, n int) int {
	if n <= 1 {
		return 0
	}
	k := splitPoint(n)
	if m < k {
		return 1 + merklePathLen(m, k)
	}
	return 1 + merklePathLen(m-k, n-k)
}

// merkleRootFromPath recomputes the root of an n-leaf tree from leaf m's
// hash and its audit path; ok is false when the path has the wrong length.
func merkleRootFromPath(m, n int, leaf [32]byte, path [][32]byte) (root [32]byte, ok bool) {
	if m < 0 || m >= n {
		return root, false
	}
	if n == 1 {
		return leaf, len(path) == 0
	}
	if len(path) == 0 {
		return root, false
	}
	last := path[len(path)-1]
	k := splitPoint(n)
	if m < k {
		sub, ok := merkleRootFromPath(m, k, leaf, path[:len(path)-1])
		return merkleNode(sub, last), ok
	}
	sub, ok := merkleRootFromPath(m-k, n-k, leaf, path[:len(path)-1])
	return merkleNode(last, sub), ok
}

func merkleLeafOf(h [32]byte) [32]byte { return merkleLeaf(h[:]) }
