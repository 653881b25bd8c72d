package sharing

import (
	"math/big"
	"testing"
)

// TestFamilyKnownAnswers pins the first members of two families, so that
// any change to the derivation (which would make shares written by older
// code unrecoverable) fails here.
func TestFamilyKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		kind byte
		bits int
		want []string
	}{
		{kindPrime, 64, goldenPrime64},
		{kindCoprime, 145, goldenCoprime145},
	} {
		got := getFamily(tc.kind, tc.bits).moduli(len(tc.want))
		for i, w := range tc.want {
			if got[i].Text(16) != w {
				t.Errorf("family %c/%d member %d = %s, want %s", tc.kind, tc.bits, i, got[i].Text(16), w)
			}
		}
	}
}

// The golden values were also reproduced by an independent Python
// implementation of the derivation documented in crt.go (SHA-256 counter
// stream, Miller-Rabin or gcd filter).
var (
	goldenPrime64    = []string{"f36e242753b2d775", "99ea12162ab0d02b", "abf112e7bb30e685"}
	goldenCoprime145 = []string{
		"19cb6fb0a8dec4454fbe83229766420abbe03",
		"1f02d2632095e971195c8d68bb80ae707f561",
		"1ef1106ba481e727f0a59556929974eefb365",
	}
)

// TestFamilies checks the defining properties: exact bit length, odd,
// prime (paper) or pairwise coprime (asmuth-bloom), distinct, and the same
// on a second derivation.
func TestFamilies(t *testing.T) {
	one := big.NewInt(1)
	for _, tc := range []struct {
		kind byte
		bits int
		n    int
	}{
		{kindPrime, 64, 30}, {kindPrime, 224, 20}, {kindPrime, 512, 20},
		{kindCoprime, 145, 40}, {kindCoprime, 1000, 20},
	} {
		mods := getFamily(tc.kind, tc.bits).moduli(tc.n)
		fresh := &family{kind: tc.kind, bits: tc.bits, plans: map[string]*garner{}}
		again := fresh.moduli(tc.n)
		var g big.Int
		for i, m := range mods {
			if m.BitLen() != tc.bits || m.Bit(0) != 1 {
				t.Fatalf("%c/%d #%d: %d bits, odd=%d", tc.kind, tc.bits, i, m.BitLen(), m.Bit(0))
			}
			if tc.kind == kindPrime && !m.ProbablyPrime(20) {
				t.Fatalf("%c/%d #%d not prime", tc.kind, tc.bits, i)
			}
			if m.Cmp(again[i]) != 0 {
				t.Fatalf("%c/%d #%d differs between derivations", tc.kind, tc.bits, i)
			}
			for j := 0; j < i; j++ {
				if g.GCD(nil, nil, m, mods[j]).Cmp(one) != 0 {
					t.Fatalf("%c/%d #%d and #%d share a factor", tc.kind, tc.bits, j, i)
				}
			}
		}
	}
}

// TestGarner compares Garner's recombination with the textbook CRT sum
// (the paper's Algorithm 2) on random residues.
func TestGarner(t *testing.T) {
	r := newTestRand(3)
	for _, tc := range []struct{ bits, t int }{{64, 1}, {64, 2}, {96, 5}, {512, 15}} {
		f := getFamily(kindPrime, tc.bits)
		all := f.moduli(tc.t + 3)
		idx := []int{}
		for i := tc.t + 2; i >= 0 && len(idx) < tc.t; i -= 1 {
			if i%2 == 0 || len(idx)+i/2 < tc.t {
				idx = append(idx, i)
			}
		}
		mods := make([]*big.Int, len(idx))
		for i, j := range idx {
			mods[i] = all[j]
		}
		g, err := f.plan(idx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := f.plan(idx); again != g {
			t.Fatal("plan not cached")
		}
		sc := newGarnerScratch(len(mods))
		for trial := 0; trial < 20; trial++ {
			res := make([]*big.Int, len(mods))
			for i, m := range mods {
				res[i], _ = uniformBelow(r, m)
			}
			got := g.combine(new(big.Int), res, sc)
			if want := textbookCRT(res, mods); got.Cmp(want) != 0 {
				t.Fatalf("bits=%d t=%d: garner %v, textbook %v", tc.bits, tc.t, got, want)
			}
		}
	}
}

// textbookCRT is sum r_i * M_i * (M_i^-1 mod m_i) mod M with M_i = M/m_i.
func textbookCRT(res, mods []*big.Int) *big.Int {
	M := big.NewInt(1)
	for _, m := range mods {
		M.Mul(M, m)
	}
	sum := new(big.Int)
	for i, m := range mods {
		Mi := new(big.Int).Quo(M, m)
		inv := new(big.Int).ModInverse(Mi, m)
		term := new(big.Int).Mul(res[i], Mi)
		term.Mul(term, inv)
		sum.Add(sum, term)
	}
	return sum.Mod(sum, M)
}

// TestGarnerNotCoprime: a plan over moduli with a common factor is refused.
func TestGarnerNotCoprime(t *testing.T) {
	if _, err := newGarner([]*big.Int{big.NewInt(15), big.NewInt(21)}); err == nil {
		t.Fatal("15 and 21 accepted")
	}
}

// TestPaperParameters checks the sizing rule: any t moduli exceed every
// chunk value, and k follows the paper's len/t for short data.
func TestPaperParameters(t *testing.T) {
	for _, th := range []int{1, 2, 3, 7, 15, 38, 255} {
		for _, n := range []int64{1, 2, 15, 100, 416, 958, 4096, 1 << 20} {
			k := paperModulusBits(n, th)
			c := paperChunkSize(n, th, k)
			if k%32 != 0 || k < 64 || k > 512 {
				t.Fatalf("t=%d n=%d: k=%d", th, n, k)
			}
			if int64(th)*int64(k-1) < 8*int64(c) {
				t.Fatalf("t=%d n=%d: t moduli of %d bits do not cover %d-byte chunks", th, n, k, c)
			}
			if int64(c) != min(n, int64(th)*int64(k-1)/8) {
				t.Fatalf("t=%d n=%d: chunk %d", th, n, c)
			}
		}
	}
	// A 1,000-digit number is 416 bytes; with t = 15 the paper takes primes
	// of 416*8/15 ~ 222 bits (67 digits); we take 224.
	if k := paperModulusBits(416, 15); k != 224 {
		t.Fatalf("k = %d, want 224", k)
	}
}
