package sharing

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
)

func bigs(v ...int64) []*big.Int {
	out := make([]*big.Int, len(v))
	for i, x := range v {
		out[i] = big.NewInt(x)
	}
	return out
}

// TestAsmuthBloomTextbook is a (2,3) example small enough to check by hand.
//
// Parameters: b = 2, so d0 = 2^2 = 4 and secrets are s in {0,1,2,3}.
// Moduli d1, d2, d3 = 11, 13, 17: odd (coprime to d0) and pairwise coprime.
// Threshold condition for t = 2, n = 3: d1*d2 > d0*d3, i.e.
// 11*13 = 143 > 4*17 = 68. So M = 143 and A = floor(143/4) = 35: alpha is
// drawn from [0, 35) and y = s + 4*alpha <= 3 + 4*34 = 139 < 143.
//
// Split s = 3 with alpha = 30: y = 3 + 4*30 = 123, and the shares are
//
//	123 mod 11 = 2   (11*11 = 121)
//	123 mod 13 = 6   (13*9  = 117)
//	123 mod 17 = 4   (17*7  = 119)
//
// Recover from shares 1 and 2 with Garner: v1 = 2; 11 = -2 mod 13 and
// -2*6 = -12 = 1 mod 13, so 11^-1 mod 13 = 6 and v2 = (6-2)*6 mod 13 =
// 24 mod 13 = 11; y = 2 + 11*11 = 123, s = 123 mod 4 = 3.
// From shares 2 and 3: 13*4 = 52 = 1 mod 17, so 13^-1 = 4; v2 = (4-6)*4 =
// -8 = 9 mod 17; y = 6 + 13*9 = 123.
// From shares 1 and 3: 11*14 = 154 = 1 mod 17, so 11^-1 = 14; v2 =
// (4-2)*14 = 28 = 11 mod 17; y = 2 + 11*11 = 123.
//
// One share alone (t-1 = 1) does not determine s: share 1 = 2 says y is in
// {2, 13, 24, 35, ...}, and 2, 13, 24, 35 are 2, 1, 0, 3 mod 4; every
// secret has alphas in range (checked exhaustively by
// TestAsmuthBloomTinyPerfect).
func TestAsmuthBloomTextbook(t *testing.T) {
	p, err := newABParams(2, 2, bigs(11, 13, 17), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.bound.Int64() != 143 || p.alphaBound.Int64() != 35 {
		t.Fatalf("M = %v, A = %v, want 143, 35", p.bound, p.alphaBound)
	}
	// Split with alpha = 30: uniformBelow(35) reads one byte; 30 < 35.
	res, err := p.split(big.NewInt(3), &fixedBytes{b: []byte{30}})
	if err != nil {
		t.Fatal(err)
	}
	if got := [3]int64{res[0].Int64(), res[1].Int64(), res[2].Int64()}; got != [3]int64{2, 6, 4} {
		t.Fatalf("shares %v, want [2 6 4]", got)
	}
	for _, pair := range [][2]int{{0, 1}, {1, 2}, {0, 2}, {2, 0}} {
		s, err := p.recover([]int{pair[0], pair[1]}, []*big.Int{res[pair[0]], res[pair[1]]})
		if err != nil || s.Int64() != 3 {
			t.Fatalf("recover %v: %v, %v", pair, s, err)
		}
	}
	// All three: the third is checked against the first two.
	if s, err := p.recover([]int{0, 1, 2}, res); err != nil || s.Int64() != 3 {
		t.Fatalf("recover all: %v, %v", s, err)
	}
	// A contradicting third share is caught.
	if _, err := p.recover([]int{0, 1, 2}, bigs(2, 6, 5)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("contradiction: %v", err)
	}
	// Shares 2 and 3 span 13*17 = 221 > M, so a forged pair can give
	// y >= 143: y = 200 has 200 mod 13 = 5 (195 = 13*15) and 200 mod 17 = 13
	// (187 = 17*11). (Shares 1 and 2 span exactly M = 143: every pair of
	// residues is some y < M, so forging them goes unnoticed.)
	if _, err := p.recover([]int{1, 2}, bigs(5, 13)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("out of range: %v", err)
	}
	// Fewer than t: an error, never a value.
	if _, err := p.recover([]int{0}, res[:1]); !errors.Is(err, ErrTooFewShares) {
		t.Fatalf("one share: %v", err)
	}
	// A residue not below its modulus.
	if _, err := p.recover([]int{0, 1}, bigs(11, 0)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("residue 11 mod 11: %v", err)
	}
}

// TestAsmuthBloomConditions: parameter sets that break the rules are
// refused.
func TestAsmuthBloomConditions(t *testing.T) {
	for _, tc := range []struct {
		name string
		b, t int
		mods []*big.Int
	}{
		{"threshold condition: 5*7 = 35 <= 4*9 = 36", 2, 2, bigs(5, 7, 9)},
		{"not coprime: 9 and 15", 2, 2, bigs(9, 11, 15)},
		{"even modulus", 2, 2, bigs(11, 12, 13)},
		{"t > n", 2, 4, bigs(11, 13, 17)},
		{"t < 1", 2, 0, bigs(11, 13, 17)},
	} {
		if _, err := newABParams(tc.b, tc.t, tc.mods, 0, nil); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestAsmuthBloomTinyPerfect enumerates every y < M of a small (3,4)
// instance and checks that any t-1 = 2 shares leave every secret possible:
// for each pair of residues that occurs, all d0 = 4 secrets occur with it.
func TestAsmuthBloomTinyPerfect(t *testing.T) {
	// d0 = 4; moduli 23, 25, 27, 29 (pairwise coprime, odd).
	// M = 23*25*27 = 15525 > 4 * 27*29 = 3132.
	p, err := newABParams(2, 3, bigs(23, 25, 27, 29), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	A := p.alphaBound.Int64()
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}} {
		mi, mj := p.mods[pair[0]].Int64(), p.mods[pair[1]].Int64()
		seen := map[[2]int64]uint8{}
		for s := int64(0); s < 4; s++ {
			for alpha := int64(0); alpha < A; alpha++ {
				y := s + 4*alpha
				seen[[2]int64{y % mi, y % mj}] |= 1 << s
			}
		}
		if len(seen) != int(mi*mj) {
			t.Fatalf("pair %v: %d residue pairs occur, want %d", pair, len(seen), mi*mj)
		}
		for k, mask := range seen {
			if mask != 0xf {
				t.Fatalf("pair %v: shares %v rule out some secrets (mask %04b)", pair, k, mask)
			}
		}
	}
}

// TestAsmuthBloomRealNoDetermination uses the real parameter set for 1-byte
// secrets with (t, n) = (3, 5): for a split of s and every pair of shares,
// every one of the 256 secrets is consistent with those two shares through
// some alpha in [0, A). (For s', alpha = (y - s') * d0^-1 mod P, plus any
// multiple of P, must be below A; the margin makes A/P > 2^128.)
func TestAsmuthBloomRealNoDetermination(t *testing.T) {
	p, err := abParamsFor(8, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	d0 := big.NewInt(256)
	res, err := p.split(big.NewInt(0x5a), newTestRand(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			P := new(big.Int).Mul(p.mods[i], p.mods[j])
			g, _ := newGarner([]*big.Int{p.mods[i], p.mods[j]})
			y := g.combine(new(big.Int), []*big.Int{res[i], res[j]}, newGarnerScratch(2))
			inv := new(big.Int).ModInverse(d0, P)
			for s := int64(0); s < 256; s++ {
				alpha := new(big.Int).Sub(y, big.NewInt(s))
				alpha.Mul(alpha, inv).Mod(alpha, P)
				if alpha.Cmp(p.alphaBound) >= 0 {
					t.Fatalf("shares %d,%d rule out secret %d", i, j, s)
				}
			}
			if new(big.Int).Quo(p.alphaBound, P).BitLen() < 128 {
				t.Fatalf("A/P below 2^128")
			}
		}
	}
}

// TestAsmuthBloomFewerGiveWrongValue: combining only t-1 residues (which
// Recover never does: it returns ErrTooFewShares) yields y mod P for the
// product P of t-1 moduli, and y mod P mod d0 is not the secret, except by
// chance (probability about 2^-b).
func TestAsmuthBloomFewerGiveWrongValue(t *testing.T) {
	p, err := abParamsFor(128, 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRand(7)
	for trial := 0; trial < 20; trial++ {
		s, _ := uniformBelow(r, new(big.Int).Lsh(big.NewInt(1), 128))
		res, err := p.split(s, r)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := newGarner(p.mods[:3])
		y := g.combine(new(big.Int), res[:3], newGarnerScratch(3))
		wrong := new(big.Int).And(y, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)))
		if wrong.Cmp(s) == 0 {
			t.Fatalf("trial %d: t-1 residues gave the secret", trial)
		}
		if got, err := p.recover([]int{0, 1, 2, 3}, res[:4]); err != nil || got.Cmp(s) != 0 {
			t.Fatalf("trial %d: t residues: %v", trial, err)
		}
	}
}

// TestAsmuthBloomParamsMargin checks the real parameter sets for a range of
// (t, n), including the largest.
func TestAsmuthBloomParamsMargin(t *testing.T) {
	cases := [][3]int{{256, 1, 1}, {256, 2, 3}, {256, 15, 20}, {256, 20, 20}, {8, 1, 5}, {4096, 3, 5}}
	if !testing.Short() {
		cases = append(cases, [3]int{256, 200, 255}, [3]int{256, 255, 255})
	}
	for _, c := range cases {
		if _, err := abParamsFor(c[0], c[1], c[2]); err != nil {
			t.Errorf("b=%d t=%d n=%d: %v", c[0], c[1], c[2], err)
		}
	}
}

// fixedBytes replays fixed bytes as randomness.
type fixedBytes struct{ b []byte }

func (f *fixedBytes) Read(p []byte) (int, error) {
	n := copy(p, f.b)
	f.b = f.b[n:]
	if n < len(p) {
		return n, errors.New("fixedBytes exhausted")
	}
	return n, nil
}

type testRand struct{ r *rand.ChaCha8 }

func newTestRand(seed byte) *testRand {
	var s [32]byte
	s[0] = seed
	return &testRand{rand.NewChaCha8(s)}
}

func (r *testRand) Read(p []byte) (int, error) { return r.r.Read(p) }
