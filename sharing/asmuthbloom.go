package sharing

import (
	"fmt"
	"io"
	"math/big"
	"sort"
	"sync"
)

// Asmuth-Bloom (1983), as used for the asmuth-bloom mode and for the data
// key of the dispersal mode.
//
// For a b-bit secret s, d0 = 2^b and the share moduli d_1..d_n are odd
// (hence coprime to d0), pairwise coprime, k = b + g bits long, and satisfy
// the threshold condition
//
//	M = d_1 ... d_t  >  d0 * d_{n-t+2} ... d_n        (moduli sorted ascending)
//
// Splitting draws alpha uniformly from [0, A) with A = floor(M / d0), sets
// y = s + alpha*d0 (so y < M) and gives share i the residue y mod d_i. Any
// t shares determine y mod (a product >= M), hence y, hence s = y mod d0.
//
// Secrecy. Let P be the product of any t-1 moduli. Given their residues,
// y is fixed modulo P; since gcd(d0, P) = 1, for every candidate s the
// alphas consistent with the shares form one residue class mod P in [0, A),
// so each s has floor(A/P) or ceil(A/P) of them. The posterior of s is
// therefore within statistical distance about P/A of the prior. With k-bit
// moduli, A >= 2^(t(k-1)-b-1) and P < 2^((t-1)k), so P/A < 2^(t+1-g). We
// take g = 136 + t, which bounds the advantage of any holder of t-1 shares
// by 2^-135, and we check M > d0 * (largest t-1 product) * 2^128 whenever a
// parameter set is built.

// abExtraBits is g: how much longer than the secret every modulus is.
func abExtraBits(t int) int { return 136 + t }

// abModulusBits is k = b + g for a b-bit secret and threshold t.
func abModulusBits(secretBits, t int) int { return secretBits + abExtraBits(t) }

// abParams is one Asmuth-Bloom parameter set. Immutable after creation.
type abParams struct {
	b          int // d0 = 2^b
	t          int
	mods       []*big.Int // share i uses mods[i]
	bound      *big.Int   // M, product of the t smallest moduli
	alphaBound *big.Int   // A = floor(M / d0) >= 1
	plan       func(idx []int) (*garner, error)
}

// newABParams checks the Asmuth-Bloom conditions for the given moduli and
// returns the parameter set. margin is the number of extra bits required in
// the threshold condition (128 for real use; 0 for textbook examples).
func newABParams(b, t int, mods []*big.Int, margin int, plan func(idx []int) (*garner, error)) (*abParams, error) {
	n := len(mods)
	if t < 1 || t > n {
		return nil, fmt.Errorf("%w: t = %d, n = %d", ErrThreshold, t, n)
	}
	one := big.NewInt(1)
	var g big.Int
	for i := range mods {
		if mods[i].Bit(0) == 0 || mods[i].Cmp(one) <= 0 {
			return nil, fmt.Errorf("%w: modulus %d is not an odd number > 1", ErrInconsistent, i)
		}
		for j := 0; j < i; j++ {
			if g.GCD(nil, nil, mods[i], mods[j]).Cmp(one) != 0 {
				return nil, fmt.Errorf("%w: moduli %d and %d are not coprime", ErrInconsistent, j, i)
			}
		}
	}
	sorted := append([]*big.Int(nil), mods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Cmp(sorted[j]) < 0 })
	m := big.NewInt(1)
	for _, d := range sorted[:t] {
		m.Mul(m, d)
	}
	rhs := big.NewInt(1)
	for _, d := range sorted[n-t+1:] {
		rhs.Mul(rhs, d)
	}
	rhs.Lsh(rhs, uint(b+margin))
	if m.Cmp(rhs) <= 0 {
		return nil, fmt.Errorf("%w: threshold condition prod(d1..dt) > d0*prod(d(n-t+2)..dn) fails", ErrInconsistent)
	}
	if plan == nil {
		plan = func(idx []int) (*garner, error) {
			m := make([]*big.Int, len(idx))
			for i, j := range idx {
				m[i] = mods[j]
			}
			return newGarner(m)
		}
	}
	return &abParams{
		b: b, t: t, mods: mods,
		bound:      m,
		alphaBound: new(big.Int).Rsh(m, uint(b)),
		plan:       plan,
	}, nil
}

type abKey struct{ b, t, n int }

var abCache sync.Map // abKey -> *abParams

// abParamsFor returns the public parameter set for b-bit secrets, threshold
// t and n shares, built from the coprime family of k = b + 136 + t bits.
func abParamsFor(b, t, n int) (*abParams, error) {
	key := abKey{b, t, n}
	if p, ok := abCache.Load(key); ok {
		return p.(*abParams), nil
	}
	f := getFamily(kindCoprime, abModulusBits(b, t))
	p, err := newABParams(b, t, f.moduli(n), 128, f.plan)
	if err != nil {
		return nil, fmt.Errorf("sharing: asmuth-bloom parameters b=%d t=%d n=%d: %w", b, t, n, err)
	}
	abCache.Store(key, p)
	return p, nil
}

// split returns the n residues of y = s + alpha*2^b for a fresh alpha.
// s must be below 2^b.
func (p *abParams) split(s *big.Int, rnd io.Reader) ([]*big.Int, error) {
	if s.Sign() < 0 || s.BitLen() > p.b {
		return nil, fmt.Errorf("sharing: secret exceeds %d bits", p.b)
	}
	alpha, err := uniformBelow(rnd, p.alphaBound)
	if err != nil {
		return nil, err
	}
	y := alpha.Lsh(alpha, uint(p.b))
	y.Add(y, s)
	res := make([]*big.Int, len(p.mods))
	for i, m := range p.mods {
		res[i] = new(big.Int).Mod(y, m)
	}
	return res, nil
}

// recover returns s from the residues res[k] of the shares with indices
// idx[k]. It needs at least t of them; the first t are combined and any
// further ones are checked against the result. Residues must be below
// their moduli. A result y >= M, or an extra residue that disagrees, is
// ErrInconsistent: an honest set of shares never produces either.
func (p *abParams) recover(idx []int, res []*big.Int) (*big.Int, error) {
	if len(idx) != len(res) {
		return nil, fmt.Errorf("%w: %d indices, %d residues", ErrInconsistent, len(idx), len(res))
	}
	if len(idx) < p.t {
		return nil, fmt.Errorf("%w: %d given, %d needed", ErrTooFewShares, len(idx), p.t)
	}
	for k, i := range idx {
		if i < 0 || i >= len(p.mods) {
			return nil, fmt.Errorf("%w: index %d out of range", ErrInconsistent, i)
		}
		if res[k].Sign() < 0 || res[k].Cmp(p.mods[i]) >= 0 {
			return nil, shareErr(i, fmt.Errorf("%w: residue not below its modulus", ErrInconsistent))
		}
	}
	g, err := p.plan(idx[:p.t])
	if err != nil {
		return nil, err
	}
	y := g.combine(new(big.Int), res[:p.t], newGarnerScratch(p.t))
	if y.Cmp(p.bound) >= 0 {
		return nil, fmt.Errorf("%w: recovered value out of range", ErrInconsistent)
	}
	var r big.Int
	for k := p.t; k < len(idx); k++ {
		if r.Mod(y, p.mods[idx[k]]).Cmp(res[k]) != 0 {
			return nil, shareErr(idx[k], fmt.Errorf("%w: residue contradicts the other shares", ErrInconsistent))
		}
	}
	s := new(big.Int).SetBit(new(big.Int), p.b, 1)
	s.Sub(s, big.NewInt(1))
	return s.And(s, y), nil
}

// uniformBelow returns a uniform integer in [0, max) by rejection sampling
// from rnd. max must be positive.
func uniformBelow(rnd io.Reader, max *big.Int) (*big.Int, error) {
	if max.Sign() <= 0 {
		return nil, fmt.Errorf("sharing: empty range")
	}
	bits := max.BitLen()
	buf := make([]byte, (bits+7)/8)
	v := new(big.Int)
	for {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return nil, fmt.Errorf("sharing: read randomness: %w", err)
		}
		if extra := len(buf)*8 - bits; extra > 0 {
			buf[0] &= 0xff >> extra
		}
		if v.SetBytes(buf).Cmp(max) < 0 {
			return v, nil
		}
	}
}
