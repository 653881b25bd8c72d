package chain

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// merkleVectorDir holds the RFC 6962 vectors of transparency-dev/merkle.
const merkleVectorDir = "testdata/rfc6962"

// merkleTestLeaves returns n distinct leaf hashes.
func merkleTestLeaves(n int) []Hash {
	leaves := make([]Hash, n)
	for i := range leaves {
		leaves[i] = LeafHash(binary.BigEndian.AppendUint64(nil, uint64(i)))
	}
	return leaves
}

// merkleExhaustiveSize is the tree size up to which the proof tests try every
// leaf index and first size even under the race detector.
const merkleExhaustiveSize = 64

// merkleSampled returns the values 0..n-1 that the proof tests try for a tree
// of size n: all of them, unless the race detector is on and n is above
// merkleExhaustiveSize; then the first and last four, the neighbours of
// every power of two and every (n/8)th value.
func merkleSampled(n uint64) []uint64 {
	if !merkleRaceEnabled || n <= merkleExhaustiveSize {
		all := make([]uint64, n)
		for i := range all {
			all[i] = uint64(i)
		}
		return all
	}
	var s []uint64
	for i := range uint64(4) {
		s = append(s, i, n-1-i)
	}
	for p := uint64(1); p < n; p <<= 1 {
		s = append(s, p-1, p, p+1)
	}
	for i := uint64(0); i < n; i += n / 8 {
		s = append(s, i)
	}
	slices.Sort(s)
	s = slices.Compact(s)
	for len(s) > 0 && s[len(s)-1] >= n {
		s = s[:len(s)-1]
	}
	return s
}

// merkleNodeKey is the key of a node in a map-backed store.
type merkleNodeKey struct {
	level uint8
	index uint64
}

// merkleBuildStore appends leaves to a Frontier and keeps every emitted node.
func merkleBuildStore(leaves []Hash) (map[merkleNodeKey]Hash, Frontier) {
	store := make(map[merkleNodeKey]Hash, 2*len(leaves))
	var f Frontier
	for _, l := range leaves {
		f.Append(l, func(level uint8, index uint64, h Hash) {
			store[merkleNodeKey{level, index}] = h
		})
	}
	return store, f
}

// merkleFakeReader is a NodeReader whose behaviour is a function field.
type merkleFakeReader struct {
	node func(level uint8, index uint64) (Hash, error)
}

func (r merkleFakeReader) Node(level uint8, index uint64) (Hash, error) {
	return r.node(level, index)
}

// errMerkleMissing is what merkleStoreReader returns for an absent node.
var errMerkleMissing = errors.New("no such node")

// merkleStoreReader serves store, counting reads in *reads, and fails the test
// if asked for a node that is not complete within treeSize.
func merkleStoreReader(t *testing.T, store map[merkleNodeKey]Hash, treeSize uint64, reads *int) NodeReader {
	return merkleFakeReader{node: func(level uint8, index uint64) (Hash, error) {
		*reads++
		if level >= 64 || index >= (treeSize>>level) {
			t.Errorf("tree size %d: asked for node (%d, %d), not complete", treeSize, level, index)
		}
		h, ok := store[merkleNodeKey{level, index}]
		if !ok {
			return Hash{}, errMerkleMissing
		}
		return h, nil
	}}
}

func TestMerkleHashString(t *testing.T) {
	empty := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name, in string
		want     Hash
		wantErr  bool
	}{
		{name: "empty root", in: empty, want: EmptyRoot()},
		{name: "upper case", in: strings.ToUpper(empty), want: EmptyRoot()},
		{name: "zero", in: strings.Repeat("0", 64), want: Hash{}},
		{name: "empty string", in: "", wantErr: true},
		{name: "short", in: empty[:62], wantErr: true},
		{name: "long", in: empty + "00", wantErr: true},
		{name: "odd length", in: empty[:63], wantErr: true},
		{name: "not hex", in: "g" + empty[1:], wantErr: true},
		{name: "prefixed", in: "0x" + empty[2:], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHash(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformedHash) {
					t.Fatalf("ParseHash(%q) error = %v, want ErrMalformedHash", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseHash(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != strings.ToLower(tt.in) {
				t.Fatalf("String() = %q, want %q", s, strings.ToLower(tt.in))
			}
		})
	}
}

func TestMerkleHashFunctions(t *testing.T) {
	// SHA-256 of 0x00, of 0x01 || zero32 || zero32, and of "".
	tests := []struct {
		name string
		got  Hash
		want string
	}{
		{"leaf of empty data", LeafHash(nil), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
		{"node of zero hashes", NodeHash(Hash{}, Hash{}), "ae0798d0ecaed2b778eddebf18f071a561c53658c05e76cedecc27cafbdbc577"},
		{"empty root", EmptyRoot(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"no leaves", RootFromLeaves(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.String() != tt.want {
				t.Fatalf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

// merkleTreeRoots is testdata/rfc6962/tree-roots.json.
type merkleTreeRoots struct {
	Source      string   `json:"source"`
	Hash        string   `json:"hash"`
	LeafInputs  []string `json:"leaf_inputs_hex"`
	RootsBySize []string `json:"root_by_tree_size_hex"`
}

// merkleReferenceTree returns the leaf hashes of tree-roots.json and the
// root of each tree size from 0 to len(leaves).
func merkleReferenceTree(t *testing.T) (leaves, roots []Hash) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(merkleVectorDir, "tree-roots.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr merkleTreeRoots
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.LeafInputs {
		d, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, LeafHash(d))
	}
	for _, s := range tr.RootsBySize {
		h, err := ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, h)
	}
	if len(roots) != len(leaves)+1 {
		t.Fatalf("%d leaves but %d roots", len(leaves), len(roots))
	}
	return leaves, roots
}

func TestMerkleTreeRoots(t *testing.T) {
	leaves, roots := merkleReferenceTree(t)
	store, _ := merkleBuildStore(leaves)
	var f Frontier
	for size, want := range roots {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			if got := RootFromLeaves(leaves[:size]); got != want {
				t.Errorf("RootFromLeaves = %s, want %s", got, want)
			}
			var reads int
			got, err := RootAt(uint64(size), merkleStoreReader(t, store, uint64(size), &reads))
			if err != nil || got != want {
				t.Errorf("RootAt = %s, %v; want %s", got, err, want)
			}
			if got := f.Root(); got != want {
				t.Errorf("Frontier.Root = %s, want %s", got, want)
			}
		})
		if size < len(leaves) {
			f.Append(leaves[size], nil)
		}
	}
}

// merkleVector is one JSON file of testdata/rfc6962/{inclusion,consistency}.
// Hashes are base64; some are deliberately not 32 bytes long.
type merkleVector struct {
	LeafIdx  uint64   `json:"leafIdx"`
	TreeSize uint64   `json:"treeSize"`
	Root     []byte   `json:"root"`
	LeafHash []byte   `json:"leafHash"`
	Size1    uint64   `json:"size1"`
	Size2    uint64   `json:"size2"`
	Root1    []byte   `json:"root1"`
	Root2    []byte   `json:"root2"`
	Proof    [][]byte `json:"proof"`
	Desc     string   `json:"desc"`
	WantErr  bool     `json:"wantErr"`
}

// merkleHashOf converts wire bytes to a Hash, as a decoder must before any
// verification: a value of the wrong length is rejected there.
func merkleHashOf(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("%w: hash of %d bytes", ErrInvalidProof, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// merkleHashesOf converts a wire proof, rejecting any element of the wrong length.
func merkleHashesOf(bs [][]byte) ([]Hash, error) {
	var hs []Hash
	for _, b := range bs {
		h, err := merkleHashOf(b)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// verify decodes the vector's hashes and runs the verifier of its kind.
func (v merkleVector) verify(kind string) error {
	proof, err := merkleHashesOf(v.Proof)
	if err != nil {
		return err
	}
	switch kind {
	case "inclusion":
		leaf, err1 := merkleHashOf(v.LeafHash)
		root, err2 := merkleHashOf(v.Root)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return VerifyInclusion(v.LeafIdx, v.TreeSize, leaf, proof, root)
	case "consistency":
		root1, err1 := merkleHashOf(v.Root1)
		root2, err2 := merkleHashOf(v.Root2)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return VerifyConsistency(v.Size1, v.Size2, root1, root2, proof)
	}
	return fmt.Errorf("unknown vector kind %q", kind)
}

func TestMerkleVectors(t *testing.T) {
	refLeaves, refRoots := merkleReferenceTree(t)
	var files []string
	err := filepath.WalkDir(merkleVectorDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") && d.Name() != "tree-roots.json" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 150 {
		t.Fatalf("found only %d vector files under %s", len(files), merkleVectorDir)
	}
	for _, path := range files {
		rel, _ := filepath.Rel(merkleVectorDir, path)
		kind, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			var v merkleVector
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			err = v.verify(kind)
			switch {
			case v.WantErr && err == nil:
				t.Fatalf("%s: accepted, want rejection", v.Desc)
			case v.WantErr && !errors.Is(err, ErrInvalidProof):
				t.Fatalf("%s: error %v does not wrap ErrInvalidProof", v.Desc, err)
			case !v.WantErr && err != nil:
				t.Fatalf("%s: rejected: %v", v.Desc, err)
			}
			if !v.WantErr {
				merkleCheckVectorProof(t, kind, v, refLeaves, refRoots)
			}
		})
	}
}

// merkleCheckVectorProof checks that a valid vector's proof is the one this
// package builds, when the vector is over the reference tree.
func merkleCheckVectorProof(t *testing.T, kind string, v merkleVector, leaves, roots []Hash) {
	t.Helper()
	want, _ := merkleHashesOf(v.Proof)
	var got []Hash
	var err error
	switch {
	case kind == "inclusion" && v.TreeSize < uint64(len(roots)) && string(v.Root) == string(roots[v.TreeSize][:]):
		got, err = InclusionProofFromLeaves(v.LeafIdx, leaves[:v.TreeSize])
	case kind == "consistency" && v.Size2 < uint64(len(roots)) && string(v.Root2) == string(roots[v.Size2][:]):
		got, err = ConsistencyProofFromLeaves(v.Size1, leaves[:v.Size2])
	default:
		return // not over the reference tree
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("built proof %v, %v; vector has %v", got, err, want)
	}
}

// TestMerkleProofsFromNodes checks, for every tree size up to 300 and every
// leaf index and first size (see merkleSampled), that the proofs read from
// perfect nodes equal the reference constructions, verify, and cost
// O(log n) reads of nodes complete within the tree size.
func TestMerkleProofsFromNodes(t *testing.T) {
	const maxSize = 300
	leaves := merkleTestLeaves(maxSize)
	store, _ := merkleBuildStore(leaves)
	for size := uint64(1); size <= maxSize; size++ {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			t.Parallel()
			tree := leaves[:size]
			maxReads := 2 * bits.Len64(size)
			var reads int
			r := merkleStoreReader(t, store, size, &reads)
			root := RootFromLeaves(tree)
			if got, err := RootAt(size, r); err != nil || got != root {
				t.Fatalf("RootAt = %s, %v; want %s", got, err, root)
			}
			for _, i := range merkleSampled(size) {
				reads = 0
				got, err := InclusionProof(i, size, r)
				want, werr := InclusionProofFromLeaves(i, tree)
				if err != nil || werr != nil || !slices.Equal(got, want) {
					t.Fatalf("leaf %d: InclusionProof = %v, %v; reference %v, %v", i, got, err, want, werr)
				}
				if reads > maxReads {
					t.Errorf("leaf %d: %d reads, want at most %d", i, reads, maxReads)
				}
				if err := VerifyInclusion(i, size, tree[i], got, root); err != nil {
					t.Fatalf("leaf %d: %v", i, err)
				}
			}
			for _, size1 := range merkleSampled(size + 1) {
				reads = 0
				got, err := ConsistencyProof(size1, size, r)
				want, werr := ConsistencyProofFromLeaves(size1, tree)
				if err != nil || werr != nil || !slices.Equal(got, want) {
					t.Fatalf("size1 %d: ConsistencyProof = %v, %v; reference %v, %v", size1, got, err, want, werr)
				}
				if reads > maxReads+1 {
					t.Errorf("size1 %d: %d reads, want at most %d", size1, reads, maxReads+1)
				}
				if err := VerifyConsistency(size1, size, RootFromLeaves(tree[:size1]), root, got); err != nil {
					t.Fatalf("size1 %d: %v", size1, err)
				}
			}
		})
	}
}

// merkleFlip returns a copy of proof with one bit of element k flipped.
func merkleFlip(proof []Hash, k int) []Hash {
	p := slices.Clone(proof)
	p[k][k%32] ^= 1 << (k % 8)
	return p
}

// merkleMutations returns proofs that differ from proof by one element:
// each element with a bit flipped, the first or last dropped, one prepended
// or appended.
func merkleMutations(proof []Hash, extra Hash) map[string][]Hash {
	m := map[string][]Hash{
		"appended":  append(slices.Clone(proof), extra),
		"prepended": append([]Hash{extra}, proof...),
	}
	if len(proof) > 0 {
		m["first dropped"] = slices.Clone(proof[1:])
		m["last dropped"] = slices.Clone(proof[:len(proof)-1])
	}
	for k := range proof {
		m[fmt.Sprintf("bit flipped in %d", k)] = merkleFlip(proof, k)
	}
	return m
}

func TestMerkleMutatedInclusionRejected(t *testing.T) {
	t.Parallel()
	const maxSize = 300
	leaves := merkleTestLeaves(maxSize)
	store, _ := merkleBuildStore(leaves)
	extra := LeafHash([]byte("extra"))
	for size := uint64(1); size <= maxSize; size++ {
		var reads int
		r := merkleStoreReader(t, store, size, &reads)
		root, _ := RootAt(size, r)
		for _, i := range merkleSampled(size) {
			proof, err := InclusionProof(i, size, r)
			if err != nil {
				t.Fatal(err)
			}
			reject := func(what string, err error) {
				if !errors.Is(err, ErrInvalidProof) {
					t.Errorf("size %d leaf %d, %s: error %v, want ErrInvalidProof", size, i, what, err)
				}
			}
			for what, p := range merkleMutations(proof, extra) {
				reject(what, VerifyInclusion(i, size, leaves[i], p, root))
			}
			for _, j := range []uint64{i ^ 1, i + 1, i - 1, i ^ 4} {
				if j != i && j < size {
					reject(fmt.Sprintf("index %d", j), VerifyInclusion(j, size, leaves[i], proof, root))
				}
			}
			reject("wrong leaf", VerifyInclusion(i, size, extra, proof, root))
			reject("wrong root", VerifyInclusion(i, size, leaves[i], proof, extra))
			err = VerifyInclusion(size+i, size, leaves[i], proof, root)
			if !errors.Is(err, ErrInvalidProof) || !errors.Is(err, ErrBadRange) {
				t.Errorf("size %d leaf %d: index out of range: error %v", size, size+i, err)
			}
		}
	}
}

func TestMerkleMutatedConsistencyRejected(t *testing.T) {
	t.Parallel()
	const maxSize = 300
	leaves := merkleTestLeaves(maxSize)
	store, _ := merkleBuildStore(leaves)
	extra := LeafHash([]byte("extra"))
	roots := make([]Hash, maxSize+1)
	for n := range roots {
		roots[n] = RootFromLeaves(leaves[:n])
	}
	for size2 := uint64(1); size2 <= maxSize; size2++ {
		var reads int
		r := merkleStoreReader(t, store, size2, &reads)
		for _, size1 := range merkleSampled(size2 + 1) {
			proof, err := ConsistencyProof(size1, size2, r)
			if err != nil {
				t.Fatal(err)
			}
			root1, root2 := roots[size1], roots[size2]
			reject := func(what string, err error) {
				if !errors.Is(err, ErrInvalidProof) {
					t.Errorf("sizes %d, %d, %s: error %v, want ErrInvalidProof", size1, size2, what, err)
				}
			}
			for what, p := range merkleMutations(proof, extra) {
				if size1 == 0 && what != "appended" && what != "prepended" {
					continue // any empty proof is valid from the empty tree
				}
				reject(what, VerifyConsistency(size1, size2, root1, root2, p))
			}
			if size1 > 0 {
				reject("wrong root1", VerifyConsistency(size1, size2, extra, root2, proof))
				reject("wrong root2", VerifyConsistency(size1, size2, root1, extra, proof))
			}
			if size1 > 0 && size1 < size2 {
				reject("swapped roots", VerifyConsistency(size1, size2, root2, root1, proof))
				for _, s := range []uint64{size1 - 1, size1 + 1} {
					if s > 0 && s < size2 {
						reject(fmt.Sprintf("size1 %d", s), VerifyConsistency(s, size2, root1, root2, proof))
					}
				}
			}
			err = VerifyConsistency(size2+1, size2, root1, root2, proof)
			if !errors.Is(err, ErrInvalidProof) || !errors.Is(err, ErrBadRange) {
				t.Errorf("size1 %d above size2 %d: error %v", size2+1, size2, err)
			}
		}
	}
}

func TestMerkleVerifyEdgeCases(t *testing.T) {
	a, b := LeafHash([]byte("a")), LeafHash([]byte("b"))
	tests := []struct {
		name      string
		err       error
		wantErr   bool
		wantRange bool
	}{
		{"inclusion in empty tree", VerifyInclusion(0, 0, a, nil, EmptyRoot()), true, true},
		{"inclusion at max index", VerifyInclusion(^uint64(0), ^uint64(0), a, nil, a), true, true},
		{"single leaf", VerifyInclusion(0, 1, a, nil, a), false, false},
		{"single leaf, proof given", VerifyInclusion(0, 1, a, []Hash{b}, a), true, false},
		{"last leaf of max tree, empty proof", VerifyInclusion(^uint64(0)-1, ^uint64(0), a, nil, a), true, false},
		{"empty to empty", VerifyConsistency(0, 0, EmptyRoot(), EmptyRoot(), nil), false, false},
		{"empty to empty, roots differ", VerifyConsistency(0, 0, a, b, nil), true, false},
		{"empty to any", VerifyConsistency(0, 5, EmptyRoot(), a, nil), false, false},
		{"empty to any, proof given", VerifyConsistency(0, 5, EmptyRoot(), a, []Hash{a}), true, false},
		{"equal sizes", VerifyConsistency(7, 7, a, a, nil), false, false},
		{"equal sizes, roots differ", VerifyConsistency(7, 7, a, b, nil), true, false},
		{"equal sizes, proof given", VerifyConsistency(7, 7, a, a, []Hash{a}), true, false},
		{"shrinking", VerifyConsistency(8, 7, a, b, []Hash{a}), true, true},
		{"max sizes", VerifyConsistency(^uint64(0)-1, ^uint64(0), a, b, []Hash{a, b}), true, false},
		{"long proof", VerifyConsistency(1, 2, a, b, make([]Hash, 200)), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.err != nil) != tt.wantErr || (tt.err != nil && !errors.Is(tt.err, ErrInvalidProof)) {
				t.Fatalf("error %v, want error: %v", tt.err, tt.wantErr)
			}
			if errors.Is(tt.err, ErrBadRange) != tt.wantRange {
				t.Fatalf("error %v, want ErrBadRange: %v", tt.err, tt.wantRange)
			}
		})
	}
}

func TestMerkleRootFromInclusion(t *testing.T) {
	leaves := merkleTestLeaves(11)
	root := RootFromLeaves(leaves)
	for i := range leaves {
		proof, err := InclusionProofFromLeaves(uint64(i), leaves)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RootFromInclusion(uint64(i), 11, leaves[i], proof)
		if err != nil || got != root {
			t.Fatalf("leaf %d: RootFromInclusion = %s, %v; want %s", i, got, err, root)
		}
		if _, err := RootFromInclusion(uint64(i), 11, leaves[i], proof[1:]); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("leaf %d, short proof: error %v, want ErrInvalidProof", i, err)
		}
	}
}

func TestMerkleBadRange(t *testing.T) {
	leaves := merkleTestLeaves(5)
	store, _ := merkleBuildStore(leaves)
	var reads int
	r := merkleStoreReader(t, store, 5, &reads)
	tests := []struct {
		name string
		call func() ([]Hash, error)
	}{
		{"inclusion from leaves, index = size", func() ([]Hash, error) { return InclusionProofFromLeaves(5, leaves) }},
		{"inclusion from leaves, empty tree", func() ([]Hash, error) { return InclusionProofFromLeaves(0, nil) }},
		{"consistency from leaves, size1 > size2", func() ([]Hash, error) { return ConsistencyProofFromLeaves(6, leaves) }},
		{"inclusion, index = size", func() ([]Hash, error) { return InclusionProof(5, 5, r) }},
		{"inclusion, empty tree", func() ([]Hash, error) { return InclusionProof(0, 0, r) }},
		{"consistency, size1 > size2", func() ([]Hash, error) { return ConsistencyProof(6, 5, r) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := tt.call(); !errors.Is(err, ErrBadRange) || p != nil {
				t.Fatalf("got %v, %v; want ErrBadRange", p, err)
			}
		})
	}
	if reads != 0 {
		t.Fatalf("%d reads for impossible ranges", reads)
	}
}

func TestMerkleNodeReaderError(t *testing.T) {
	leaves := merkleTestLeaves(13)
	store, _ := merkleBuildStore(leaves)
	errDisk := errors.New("disk on fire")
	// Fail on the k-th read, for every k a call makes, so that each read
	// site is seen to pass its error on.
	tests := []struct {
		name string
		call func(NodeReader) error
	}{
		{"RootAt", func(r NodeReader) error { _, err := RootAt(13, r); return err }},
		{"InclusionProof", func(r NodeReader) error { _, err := InclusionProof(2, 13, r); return err }},
		{"ConsistencyProof", func(r NodeReader) error { _, err := ConsistencyProof(6, 13, r); return err }},
		{"FrontierAt", func(r NodeReader) error { _, err := FrontierAt(13, r); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k := 0; ; k++ {
				var n int
				r := merkleFakeReader{node: func(level uint8, index uint64) (Hash, error) {
					n++
					if n > k {
						return Hash{}, errDisk
					}
					return store[merkleNodeKey{level, index}], nil
				}}
				err := tt.call(r)
				if n <= k { // no read failed: done
					if err != nil {
						t.Fatalf("no failing read, error %v", err)
					}
					if k == 0 {
						t.Fatal("no reads at all")
					}
					return
				}
				if !errors.Is(err, ErrNodeRead) || !errors.Is(err, errDisk) {
					t.Fatalf("read %d failing: error %v, want ErrNodeRead wrapping the reader's error", k, err)
				}
			}
		})
	}
}
