package qkd

import (
	"errors"
	"math"
	mrand "math/rand/v2"
	"testing"
)

func naiveToeplitz(seed, x *Bits, m int) *Bits {
	n := x.Len()
	y := NewBits(m)
	for i := 0; i < m; i++ {
		var p uint64
		for j := 0; j < n; j++ {
			p ^= seed.Bit(i-j+n-1) & x.Bit(j)
		}
		y.Set(i, p)
	}
	return y
}

func TestToeplitzMatchesDefinition(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for _, c := range [][2]int{{1, 1}, {5, 3}, {64, 64}, {200, 70}, {1000, 333}, {513, 129}} {
		n, m := c[0], c[1]
		x, seed := randBits(r, n), randBits(r, n+m-1)
		want := naiveToeplitz(seed, x, m)
		if got := toeplitzDirect(seed, x, m); !got.Equal(want) {
			t.Errorf("direct %dx%d differs", m, n)
		}
		if got := toeplitzNTT(seed, x, m); !got.Equal(want) {
			t.Errorf("NTT %dx%d differs", m, n)
		}
	}
	// Large: direct against NTT.
	n, m := scale(200000, 30000), scale(60000, 9000)
	x, seed := randBits(r, n), randBits(r, n+m-1)
	if !toeplitzDirect(seed, x, m).Equal(toeplitzNTT(seed, x, m)) {
		t.Errorf("direct and NTT differ at %dx%d", m, n)
	}
}

func TestToeplitzBadInput(t *testing.T) {
	x := NewBits(100)
	for _, c := range []struct{ seed, m int }{{50, 10}, {110, 10}, {100, -1}} {
		if _, err := ToeplitzHash(NewBits(c.seed), x, c.m); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("seed %d m %d: err %v", c.seed, c.m, err)
		}
	}
	if y, err := ToeplitzHash(NewBits(0), x, 0); err != nil || y.Len() != 0 {
		t.Errorf("m=0: %v %v", y, err)
	}
}

// TestFiniteKeyFormula recomputes the bound of Tomamichel et al. by hand.
func TestFiniteKeyFormula(t *testing.T) {
	for _, c := range []FiniteKey{
		{N: 471071, K: 52342, QTol: 0.011, LeakEC: 42740, EpsSec: 1e-10, EpsCor: 1e-15, Steps: 110},
		{N: 100000, K: 10000, QTol: 0.05, LeakEC: 33000, EpsSec: 1e-9, EpsCor: 1e-12, Steps: 1},
		{N: 1000, K: 100, QTol: 0.02, LeakEC: 150, EpsSec: 1e-10, EpsCor: 1e-15, Steps: 110},
	} {
		n, k, e := float64(c.N), float64(c.K), c.EpsSec/float64(c.Steps)
		mu := math.Sqrt((n + k) / (n * k) * (k + 1) / k * math.Log(2/e))
		q := c.QTol + mu
		h := -q*math.Log2(q) - (1-q)*math.Log2(1-q)
		want := math.Floor(n*(1-h) - float64(c.LeakEC) - math.Log2(2/(e*e*c.EpsCor)))
		if want < 0 {
			want = 0
		}
		if got := c.Length(); got != int(want) || math.Abs(c.Mu()-mu) > 1e-12 {
			t.Errorf("%+v: Length %d mu %v, want %v mu %v", c, got, c.Mu(), want, mu)
		}
	}
}

// TestOutputLengthMatchesFormula: a real block's privacy amplification
// output length is what the finite-key formula gives for its numbers.
func TestOutputLengthMatchesFormula(t *testing.T) {
	for _, p := range []float64{0, 0.04, 0.1} {
		cfg := testConfig("pa-length", scale(1<<19, 1<<17))
		cfg.Channel.Noise = p
		l, err := NewLink(cfg)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := l.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st := blk.Stats
		qtol, steps := tolGrid(st.QBER, cfg.QBERStep, cfg.QBERThreshold)
		fk := FiniteKey{N: st.ReconciledBits, K: st.SampleBits, QTol: qtol, LeakEC: st.LeakedBits,
			EpsSec: cfg.EpsSec, EpsCor: cfg.EpsCor, Steps: steps}
		if st.SecureBits != fk.Length() || st.SecureBits == 0 || st.QTol != qtol || st.QTol < st.QBER {
			t.Errorf("p=%v: secure %d, formula %d (Q_tol %v vs %v)", p, st.SecureBits, fk.Length(), st.QTol, qtol)
		}
		if st.OutputBits > st.SecureBits || st.OutputBits != st.RefillBits+st.Keys*cfg.KeyBits {
			t.Errorf("p=%v: output %d = refill %d + %d keys, secure %d", p, st.OutputBits, st.RefillBits, st.Keys, st.SecureBits)
		}
		if st.VerifyBits != 50 || st.ReconciledBits != st.Sifted-st.SampleBits {
			t.Errorf("p=%v: verify %d bits, reconciled %d of %d sifted", p, st.VerifyBits, st.ReconciledBits, st.Sifted)
		}
		if len(blk.Keys) != st.Keys {
			t.Errorf("%d keys returned, stats say %d", len(blk.Keys), st.Keys)
		}
	}
}

func TestBinaryEntropyThresholds(t *testing.T) {
	// Zeros of 1 - h(Q) - f h(Q) from REFERENCES.md.
	for _, c := range []struct{ f, q float64 }{{1, 0.110}, {1.1, 0.102}, {1.22, 0.094}} {
		lo, hi := 0.0, 0.5
		for i := 0; i < 60; i++ {
			mid := (lo + hi) / 2
			if 1-(1+c.f)*BinaryEntropy(mid) > 0 {
				lo = mid
			} else {
				hi = mid
			}
		}
		if math.Abs(lo-c.q) > 0.0006 {
			t.Errorf("f=%v: zero at %.4f, want %.3f", c.f, lo, c.q)
		}
	}
	if BinaryEntropy(0) != 0 || BinaryEntropy(0.5) != 1 || BinaryEntropy(0.7) != 1 || AsymptoticFraction(0.2, 1) != 0 {
		t.Error("entropy edge cases")
	}
}
