package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"testing"
)

// merkleEmitted is one call of an Append emit function.
type merkleEmitted struct {
	level uint8
	index uint64
	hash  Hash
}

func TestMerkleFrontierAppend(t *testing.T) {
	const maxSize = 1000
	leaves := merkleTestLeaves(maxSize)
	var f Frontier
	seen := make(map[merkleNodeKey]bool)
	for n := 0; n <= maxSize; n++ {
		if f.Size() != uint64(n) {
			t.Fatalf("Size() = %d, want %d", f.Size(), n)
		}
		if got, want := f.Root(), RootFromLeaves(leaves[:n]); got != want {
			t.Fatalf("size %d: Root() = %s, want %s", n, got, want)
		}
		if n == maxSize {
			break
		}
		var emitted []merkleEmitted
		f.Append(leaves[n], func(level uint8, index uint64, h Hash) {
			emitted = append(emitted, merkleEmitted{level, index, h})
		})
		// The leaf, then one node per trailing one bit of the old size.
		if want := 1 + bits.TrailingZeros64(^uint64(n)); len(emitted) != want {
			t.Fatalf("append at %d: %d nodes emitted, want %d", n, len(emitted), want)
		}
		for k, e := range emitted {
			key := merkleNodeKey{e.level, e.index}
			begin, end := e.index<<e.level, (e.index+1)<<e.level
			switch {
			case e.level != uint8(k):
				t.Fatalf("append at %d: emit %d at level %d, want bottom-up", n, k, e.level)
			case end != uint64(n)+1:
				t.Fatalf("append at %d: node %v covers [%d, %d), want it to end at the new leaf", n, key, begin, end)
			case seen[key]:
				t.Fatalf("append at %d: node %v emitted twice", n, key)
			case e.hash != RootFromLeaves(leaves[begin:end]):
				t.Fatalf("append at %d: node %v has the wrong hash", n, key)
			}
			seen[key] = true
		}
	}
	// Every perfect node of the 1000-leaf tree was emitted exactly once.
	var perfect int
	for level := 0; level < 64; level++ {
		perfect += maxSize >> level
	}
	if len(seen) != perfect {
		t.Fatalf("%d distinct nodes emitted, want %d", len(seen), perfect)
	}
}

func TestMerkleFrontierCloneAndAt(t *testing.T) {
	leaves := merkleTestLeaves(100)
	store, f := merkleBuildStore(leaves[:77])
	g := f.Clone()
	h := f // plain assignment copies too
	g.Append(leaves[77], nil)
	if f.Size() != 77 || h.Root() != f.Root() || f.Root() != RootFromLeaves(leaves[:77]) {
		t.Fatal("appending to a clone changed the original")
	}
	for n := uint64(0); n <= 77; n++ {
		var reads int
		at, err := FrontierAt(n, merkleStoreReader(t, store, n, &reads))
		if err != nil {
			t.Fatal(err)
		}
		if at.Size() != n || at.Root() != RootFromLeaves(leaves[:n]) {
			t.Fatalf("FrontierAt(%d): size %d root %s", n, at.Size(), at.Root())
		}
		// The rebuilt frontier continues the log.
		for i := n; i < 100; i++ {
			at.Append(leaves[i], nil)
		}
		if at.Root() != RootFromLeaves(leaves) {
			t.Fatalf("FrontierAt(%d) then appending: wrong root", n)
		}
	}
}

func TestMerkleFrontierMarshalRoundTrip(t *testing.T) {
	leaves := merkleTestLeaves(300)
	var f Frontier
	for n := 0; n <= len(leaves); n++ {
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if want := 9 + 32*bits.OnesCount(uint(n)); len(b) != want {
			t.Fatalf("size %d: %d bytes, want %d", n, len(b), want)
		}
		var g Frontier
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if g != f {
			t.Fatalf("size %d: round trip changed the frontier", n)
		}
		if n < len(leaves) {
			f.Append(leaves[n], nil)
		}
	}
	// The largest size: every one of the 64 slots in use.
	full := append([]byte{1}, binary.BigEndian.AppendUint64(nil, math.MaxUint64)...)
	full = append(full, bytes.Repeat([]byte{0xab}, 64*32)...)
	var g Frontier
	if err := g.UnmarshalBinary(full); err != nil {
		t.Fatal(err)
	}
	if b, _ := g.MarshalBinary(); !bytes.Equal(b, full) {
		t.Fatal("round trip of a full frontier changed it")
	}
	if g.Size() != math.MaxUint64 {
		t.Fatalf("Size() = %d", g.Size())
	}
}

func TestMerkleFrontierUnmarshalRejects(t *testing.T) {
	header := func(version byte, size uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte{version}, size)
	}
	hashes := func(n int) []byte { return bytes.Repeat([]byte{7}, 32*n) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"version only", []byte{1}},
		{"short size", header(1, 0)[:8]},
		{"version 0", header(0, 0)},
		{"version 2", header(2, 0)},
		{"size 0 with a hash", append(header(1, 0), hashes(1)...)},
		{"size 1 without hash", header(1, 1)},
		{"size 1 with 2 hashes", append(header(1, 1), hashes(2)...)},
		{"size 3 with 1 hash", append(header(1, 3), hashes(1)...)},
		{"size 3 with a short hash", append(header(1, 3), hashes(2)[:63]...)},
		{"trailing byte", append(append(header(1, 4), hashes(1)...), 0)},
		{"max size with 63 hashes", append(header(1, math.MaxUint64), hashes(63)...)},
	}
	var orig Frontier
	orig.Append(LeafHash([]byte("x")), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := orig
			if err := f.UnmarshalBinary(tt.in); !errors.Is(err, ErrMalformedFrontier) {
				t.Fatalf("error %v, want ErrMalformedFrontier", err)
			}
			if f != orig {
				t.Fatal("failed UnmarshalBinary changed the frontier")
			}
		})
	}
}

func TestMerkleFrontierFullPanics(t *testing.T) {
	b := append([]byte{1}, binary.BigEndian.AppendUint64(nil, math.MaxUint64)...)
	b = append(b, make([]byte, 64*32)...)
	var f Frontier
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Append to a full frontier did not panic")
		}
	}()
	f.Append(Hash{}, nil)
}
