package qkd

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"testing"
)

// noisyPair returns Alice's random key and Bob's copy with exactly
// round(q*n) errors at random positions.
func noisyPair(r *mrand.Rand, n int, q float64) (*Bits, *Bits) {
	a := randBits(r, n)
	b := a.Clone()
	errs := int(math.Round(q * float64(n)))
	for _, i := range r.Perm(n)[:errs] {
		b.Flip(i)
	}
	return a, b
}

// reconcile runs Cascade between in-memory endpoints (through the real
// message handlers, without authentication).
func reconcile(a, b *Bits, q float64, passes int, seed uint64) (*cascadeBob, *cascadeAlice, error) {
	alice := &cascadeAlice{key: a, q: q}
	bob := newCascadeBob(b, func(m *Message) (*Bits, error) {
		if m.Type == MsgCascadePass {
			return alice.startPass(m, passes)
		}
		return alice.answer(m)
	})
	src := randomness{seed: []byte(fmt.Sprint(seed))}.stream("shuffle")
	err := bob.run(q, passes, func() []byte { return randomSeed(src) })
	return bob, alice, err
}

// TestCascadeResidualErrorZero: over many runs at Q <= 5%, Cascade leaves no
// error, and Alice and Bob count the same leakage.
func TestCascadeResidualErrorZero(t *testing.T) {
	runs := scale(100, 12)
	n := scale(20000, 8000)
	r := mrand.New(mrand.NewPCG(7, 7))
	for _, q := range []float64{0.005, 0.01, 0.02, 0.03, 0.05} {
		var leak, ent float64
		for i := 0; i < runs; i++ {
			a, b := noisyPair(r, n, q)
			bob, alice, err := reconcile(a, b, q, 4, uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if d := a.Distance(b); d != 0 {
				t.Fatalf("Q=%v run %d: %d residual errors", q, i, d)
			}
			if bob.leak != alice.leak {
				t.Fatalf("leak counted %d by Bob, %d by Alice", bob.leak, alice.leak)
			}
			if bob.corrected != int(math.Round(q*float64(n))) {
				t.Fatalf("corrected %d, injected %v", bob.corrected, q*float64(n))
			}
			leak += float64(bob.leak)
			ent += float64(n) * BinaryEntropy(q)
		}
		t.Logf("Q=%.3f: %d runs of %d bits, mean f = %.3f", q, runs, n, leak/ent)
	}
}

func TestCascadeBlockSize(t *testing.T) {
	for _, c := range []struct {
		q       float64
		n, p, k int
	}{
		{0.01, 100000, 0, 73}, {0.01, 100000, 1, 146}, {0.01, 100000, 3, 584},
		{0.05, 100000, 0, 15}, {0.02, 100000, 0, 37}, {0, 100000, 0, 730},
		{0.01, 100, 3, 100},
	} {
		if got := cascadeBlockSize(c.q, c.n, c.p); got != c.k {
			t.Errorf("cascadeBlockSize(%v, %d, %d) = %d, want %d", c.q, c.n, c.p, got, c.k)
		}
	}
}

func TestCascadeAliceRejectsBadQueries(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 1))
	a := &cascadeAlice{key: randBits(r, 1000), q: 0.02}
	if _, err := a.answer(&Message{Type: MsgCascadeQuery, Ranges: []Range{{Pass: 0, Start: 0, End: 10}}}); err == nil {
		t.Error("query before any pass accepted")
	}
	if _, err := a.startPass(&Message{Pass: 1, BlockSize: 74, Seed: make([]byte, 32)}, 4); err == nil {
		t.Error("pass 1 before pass 0 accepted")
	}
	if _, err := a.startPass(&Message{Pass: 0, BlockSize: 99, Seed: make([]byte, 32)}, 4); err == nil {
		t.Error("wrong block size accepted")
	}
	if _, err := a.startPass(&Message{Pass: 0, BlockSize: 37, Seed: make([]byte, 32)}, 4); err != nil {
		t.Fatal(err)
	}
	for _, rg := range []Range{{0, 5, 5}, {0, 990, 1001}, {1, 0, 4}, {0, -1, 3}} {
		if _, err := a.answer(&Message{Ranges: []Range{rg}}); err == nil {
			t.Errorf("range %+v accepted", rg)
		}
	}
}
