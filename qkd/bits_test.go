package qkd

import (
	"errors"
	"math/bits"
	mrand "math/rand/v2"
	"testing"
)

func randBits(r *mrand.Rand, n int) *Bits {
	b := NewBits(n)
	for i := 0; i < n; i++ {
		b.Set(i, r.Uint64())
	}
	return b
}

func TestBitsHex(t *testing.T) {
	for _, s := range []string{"", "0", "f", "608918c0659e33dc", "4a284b5a", "0123456789abcdef0123456789abcdef01"} {
		b, err := ParseHex(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Hex(); got != s {
			t.Errorf("ParseHex(%q).Hex() = %q", s, got)
		}
		if len(s) > 0 && BitsFromBytes(b.Bytes(), b.Len()).Hex() != s {
			t.Errorf("Bytes round trip of %q", s)
		}
	}
	if _, err := ParseHex("12g4"); !errors.Is(err, ErrBadHex) {
		t.Errorf("ParseHex(bad) = %v, want ErrBadHex", err)
	}
	b, _ := ParseHex("a")
	if b.String() != "1010" {
		t.Errorf("String = %q, want MSB-first 1010", b.String())
	}
}

func TestBitsOps(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 63, 64, 65, 127, 128, 1000} {
		x, m := randBits(r, n), randBits(r, n)
		// Select against a naive loop.
		sel := x.Select(m)
		k := 0
		for i := 0; i < n; i++ {
			if m.Bit(i) == 1 {
				if sel.Bit(k) != x.Bit(i) {
					t.Fatalf("n=%d Select bit %d", n, k)
				}
				k++
			}
		}
		if k != sel.Len() {
			t.Fatalf("n=%d Select len %d want %d", n, sel.Len(), k)
		}
		// Full-word masks take the fast path.
		ones := NewBits(n)
		for i := 0; i < n; i++ {
			ones.Set(i, 1)
		}
		if !x.Select(ones).Equal(x) {
			t.Fatalf("n=%d Select(all) differs", n)
		}
		// Parity against a naive loop on random ranges.
		for j := 0; j < 50 && n > 0; j++ {
			a, b := r.IntN(n+1), r.IntN(n+1)
			if a > b {
				a, b = b, a
			}
			var p uint64
			for i := a; i < b; i++ {
				p ^= x.Bit(i)
			}
			if x.Parity(a, b) != p {
				t.Fatalf("n=%d Parity(%d,%d)", n, a, b)
			}
			s := x.Slice(a, b)
			for i := a; i < b; i++ {
				if s.Bit(i-a) != x.Bit(i) {
					t.Fatalf("Slice(%d,%d)", a, b)
				}
			}
		}
		y := randBits(r, 77)
		xy := x.Append(y)
		if !xy.Slice(0, n).Equal(x) || !xy.Slice(n, n+77).Equal(y) {
			t.Fatalf("n=%d Append", n)
		}
		if e, o := x.Even(), x.Odd(); e.Len()+o.Len() != n {
			t.Fatalf("Even/Odd lengths %d+%d != %d", e.Len(), o.Len(), n)
		}
	}
}

func TestSampleMaskAndPermutation(t *testing.T) {
	src := randomness{seed: []byte("t")}.stream("s")
	for _, c := range [][2]int{{10, 0}, {10, 3}, {10, 7}, {10, 10}, {1000, 100}, {1000, 900}} {
		if got := sampleMask(src, c[0], c[1]).OnesCount(); got != c[1] {
			t.Errorf("sampleMask(%d,%d) has %d ones", c[0], c[1], got)
		}
	}
	p := permutation([32]byte{1}, 1000)
	seen := make([]bool, 1000)
	for _, v := range p {
		if seen[v] {
			t.Fatal("permutation repeats", v)
		}
		seen[v] = true
	}
	q := permutation([32]byte{1}, 1000)
	for i := range p {
		if p[i] != q[i] {
			t.Fatal("permutation is not deterministic")
		}
	}
}

func TestBernoulli(t *testing.T) {
	src := randomness{seed: []byte("b")}.stream("x")
	for _, p := range []float64{0, 0.001, 0.01, 0.25, 0.5, 0.7, 1} {
		th, one := threshold(p)
		ones := 0
		const words = 20000
		for i := 0; i < words; i++ {
			ones += bits.OnesCount64(bernoulli(src, th, one))
		}
		got := float64(ones) / (64 * words)
		if d := got - p; d > 0.005 || d < -0.005 {
			t.Errorf("bernoulli(%v) frequency %v", p, got)
		}
	}
}
