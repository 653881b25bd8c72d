package sharing

import (
	"encoding/hex"
	"testing"
)

// RFC 6962 reference roots for the first 1..8 of the eight test leaves
// used by Certificate Transparency's merkle tree tests.
var rfc6962Leaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var rfc6962Roots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func TestMerkleRFC6962(t *testing.T) {
	leaves := make([][32]byte, len(rfc6962Leaves))
	for i, l := range rfc6962Leaves {
		d, _ := hex.DecodeString(l)
		leaves[i] = merkleLeaf(d)
	}
	for n := 1; n <= len(leaves); n++ {
		root := merkleRoot(leaves[:n])
		if got := hex.EncodeToString(root[:]); got != rfc6962Roots[n-1] {
			t.Fatalf("size %d: root %s, want %s", n, got, rfc6962Roots[n-1])
		}
	}
}

// TestMerkleProofs checks every audit path of trees of 1..MaxShares leaves
// (sampled), its length, and that a wrong index, leaf or path fails.
func TestMerkleProofs(t *testing.T) {
	for n := 1; n <= MaxShares; n += 1 + n/8 {
		leaves := make([][32]byte, n)
		for i := range leaves {
			leaves[i] = merkleLeaf([]byte{byte(i), byte(n)})
		}
		root := merkleRoot(leaves)
		for m := 0; m < n; m++ {
			path := merklePath(m, leaves)
			if len(path) != merklePathLen(m, n) || len(path) > maxProofLen {
				t.Fatalf("n=%d m=%d: path of %d, want %d", n, m, len(path), merklePathLen(m, n))
			}
			if got, ok := merkleRootFromPath(m, n, leaves[m], path); !ok || got != root {
				t.Fatalf("n=%d m=%d: path does not verify", n, m)
			}
			if n > 1 {
				if got, ok := merkleRootFromPath((m+1)%n, n, leaves[m], path); ok && got == root {
					t.Fatalf("n=%d m=%d: verifies at the wrong index", n, m)
				}
				bad := append([][32]byte(nil), path...)
				bad[0][0] ^= 1
				if got, _ := merkleRootFromPath(m, n, leaves[m], bad); got == root {
					t.Fatalf("n=%d m=%d: modified path verifies", n, m)
				}
				if _, ok := merkleRootFromPath(m, n, leaves[m], path[1:]); ok {
					t.Fatalf("n=%d m=%d: short path accepted", n, m)
				}
			}
		}
		if _, ok := merkleRootFromPath(n, n, leaves[0], nil); ok {
			t.Fatal("index out of range accepted")
		}
	}
}
