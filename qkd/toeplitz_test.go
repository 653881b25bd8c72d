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

// TestFiniteKeyPublishedRates checks FiniteKey.Length against the numbers
// Tomamichel, Lim, Gisin and Renner publish for their bound, rather than
// against a second copy of the formula.
//
// Source: "Tight finite-key analysis for quantum cryptography",
// arXiv:1103.4130 (Nat. Commun. 3, 634 (2012)), Table II: the optimal
// protocol for the security rate eps/l = 1e-14 at block size n and channel
// QBER Q, with its expected key rate r = (1 - eps_rob) l / M(n, k), the
// tolerated QBER Q_tol, the robustness eps_rob and the basis probability
// p_x, for leak_EC = 1.1 n h(Q_tol) and a perfect qubit source (q = 1).
// Each row is rebuilt here from those printed parameters alone:
//   - k and M from p_x. Read literally as p_x = (1 + sqrt(k/n))^-1, the
//     column would give k = 49 n and r near 1% at n = 1e6; it only makes
//     sense as the probability of the parameter-estimation basis, so
//     k = n (p/(1-p))^2 and M = n/(1-p)^2 (both bases chosen with 1 - p).
//   - eps = 1e-14 l, split evenly between eps_sec and eps_cor (the split
//     moves l by a few bits out of thousands).
//
// Tolerance: the rate from Length must not exceed the published one and
// must reach at least 85% of it. Length implements Eq. (2) of the journal
// version, mu = sqrt((n+k)/(nk) (k+1)/k ln(2/eps_sec)) and the
// log2(2/(eps_sec^2 eps_cor)) term; the table comes from the paper's
// optimised protocol (its own split of eps and the Serfling-based
// statistics of Supplementary Note 2), and rebuilt from the printed
// parameters the journal bound gives 87-92% of the printed rates. A bound
// that forgets leak_EC, the statistical term mu, or uses h(Q) for h(Q+mu)
// lands far above; one with a doubled mu or leak far below.
func TestFiniteKeyPublishedRates(t *testing.T) {
	for _, row := range []struct {
		n           float64
		q           float64 // channel QBER, for the name only
		r           float64 // published expected key rate
		p, qtol, rb float64 // p_x, Q_tol and eps_rob as printed
	}{
		{1e4, 0.010, 0.117, 0.382, 0.0248, 0.023},
		{1e4, 0.025, 0.068, 0.430, 0.0378, 0.030},
		{1e5, 0.010, 0.304, 0.220, 0.0214, 0.008},
		{1e5, 0.025, 0.215, 0.233, 0.0358, 0.010},
		{1e6, 0.010, 0.478, 0.125, 0.0173, 0.006},
		{1e6, 0.025, 0.357, 0.137, 0.0321, 0.007},
	} {
		k := row.n * (row.p / (1 - row.p)) * (row.p / (1 - row.p))
		m := row.n / ((1 - row.p) * (1 - row.p))
		fk := FiniteKey{N: int(row.n), K: int(math.Round(k)), QTol: row.qtol,
			LeakEC: int(math.Ceil(1.1 * row.n * BinaryEntropy(row.qtol))), Steps: 1}
		// eps depends on l: start from the published length and iterate.
		l := row.r * m / (1 - row.rb)
		for range 20 {
			eps := 1e-14 * l
			fk.EpsSec, fk.EpsCor = eps/2, eps/2
			l = float64(fk.Length())
		}
		got := (1 - row.rb) * l / m
		t.Logf("n=%g Q=%g%%: rate %.4f, published %.3f (ratio %.3f)", row.n, 100*row.q, got, row.r, got/row.r)
		if got > row.r || got < 0.85*row.r {
			t.Errorf("n=%g Q=%g%%: rate %.4f from l=%.0f (k=%.0f, mu=%.4f), published %.3f; want within [0.85, 1] of it",
				row.n, 100*row.q, got, l, k, fk.Mu(), row.r)
		}
	}
}

// TestFiniteKeyAsymptote: with error correction at the Shannon limit
// (leak_EC = n h(Q)) and k growing like sqrt(n), the key fraction l/n
// tends to 1 - 2h(Q), the asymptotic rate the same paper states (and the
// Shor-Preskill rate); at n = 1e12 it is within 1% of it.
func TestFiniteKeyAsymptote(t *testing.T) {
	for _, q := range []float64{0.01, 0.025, 0.05} {
		n := 1e12
		fk := FiniteKey{N: int(n), K: int(100 * math.Sqrt(n)), QTol: q,
			LeakEC: int(math.Ceil(n * BinaryEntropy(q))), EpsSec: 1e-10, EpsCor: 1e-15, Steps: 1}
		got, want := float64(fk.Length())/n, 1-2*BinaryEntropy(q)
		if math.Abs(got-want) > 0.01*want {
			t.Errorf("Q=%g: l/n = %.5f, asymptote 1-2h(Q) = %.5f", q, got, want)
		}
	}
	// And the finite-size terms only ever cost key: below the asymptote
	// for every n.
	for _, n := range []int{1e4, 1e5, 1e6, 1e8} {
		fk := FiniteKey{N: n, K: n / 10, QTol: 0.02, LeakEC: int(float64(n) * BinaryEntropy(0.02)),
			EpsSec: 1e-10, EpsCor: 1e-15, Steps: 1}
		if r := float64(fk.Length()) / float64(n); r >= 1-2*BinaryEntropy(0.02) {
			t.Errorf("n=%d: l/n = %.4f at or above the asymptote", n, r)
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
