package qkd

import (
	"fmt"
	"math/bits"
)

// Toeplitz hashing: y = T x over GF(2), where the m x n Toeplitz matrix is
// T[i][j] = seed[i-j+n-1] for a seed of n+m-1 bits. The family is
// 2-universal, which is what the leftover hash lemma (privacy amplification)
// and the verification hash (collision probability 2^-m) need.
//
// y_i is the parity of the linear convolution c = seed * x at index i+n-1,
// so large products are computed with a number-theoretic transform over
// Z/2013265921 (exact: every coefficient is at most n < modulus), small ones
// directly with word-wide AND and popcount.

// ToeplitzHash returns the m-bit hash of x under seed (len n+m-1).
func ToeplitzHash(seed, x *Bits, m int) (*Bits, error) {
	n := x.Len()
	if m < 0 || n == 0 && m > 0 || seed.Len() != n+m-1 && m > 0 {
		return nil, fmt.Errorf("%w: toeplitz seed %d bits for %dx%d", ErrInvalidConfig, seed.Len(), m, n)
	}
	if m == 0 {
		return NewBits(0), nil
	}
	if n+m-1 > nttMaxLen {
		return nil, fmt.Errorf("%w: toeplitz input of %d bits is too long", ErrInvalidConfig, n)
	}
	if uint64(m)*uint64(n) <= 1<<26 || m <= 256 {
		return toeplitzDirect(seed, x, m), nil
	}
	return toeplitzNTT(seed, x, m), nil
}

// toeplitzDirect computes each output bit as parity(row & x); row i is the
// window of the reversed seed starting at m-1-i.
func toeplitzDirect(seed, x *Bits, m int) *Bits {
	n := x.Len()
	L := n + m - 1
	rev := NewBits(L)
	for k := 0; k < L; k++ {
		if seed.w[k>>6]>>(k&63)&1 == 1 {
			r := L - 1 - k
			rev.w[r>>6] |= 1 << (r & 63)
		}
	}
	y := NewBits(m)
	nw := len(x.w)
	for i := 0; i < m; i++ {
		start := m - 1 - i
		var acc uint64
		for w := 0; w < nw; w++ {
			acc ^= rev.wordAt(start+64*w) & x.w[w]
		}
		y.w[i>>6] |= uint64(bits.OnesCount64(acc)&1) << (i & 63)
	}
	return y
}

func toeplitzNTT(seed, x *Bits, m int) *Bits {
	n := x.Len()
	L := seed.Len()
	// A cyclic convolution of length size >= L folds c[t+size] onto c[t]
	// only for t < L+n-1-size <= n-1, below the indices we read.
	size := 1
	for size < L {
		size <<= 1
	}
	a := make([]uint32, size)
	b := make([]uint32, size)
	for i := 0; i < L; i++ {
		a[i] = uint32(seed.w[i>>6] >> (i & 63) & 1)
	}
	for i := 0; i < n; i++ {
		b[i] = uint32(x.w[i>>6] >> (i & 63) & 1)
	}
	ntt(a, false)
	ntt(b, false)
	for i := range a {
		a[i] = uint32(uint64(a[i]) * uint64(b[i]) % nttMod)
	}
	ntt(a, true)
	y := NewBits(m)
	for i := 0; i < m; i++ {
		y.w[i>>6] |= uint64(a[i+n-1]&1) << (i & 63)
	}
	return y
}

const (
	nttMod    = 2013265921 // 15 * 2^27 + 1
	nttRoot   = 31         // a primitive root modulo nttMod
	nttMaxLen = 1 << 27
)

func powMod(a, e uint64) uint64 {
	r := uint64(1)
	a %= nttMod
	for e > 0 {
		if e&1 == 1 {
			r = r * a % nttMod
		}
		a = a * a % nttMod
		e >>= 1
	}
	return r
}

// ntt transforms a in place (len a power of two <= 2^27). Twiddle factors
// carry Shoup's precomputed quotient w' = floor(w 2^32 / p), so each
// butterfly multiplies without a division.
func ntt(a []uint32, invert bool) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	tw := make([]uint32, n/2)
	twq := make([]uint32, n/2)
	for length := 2; length <= n; length <<= 1 {
		w := powMod(nttRoot, (nttMod-1)/uint64(length))
		if invert {
			w = powMod(w, nttMod-2)
		}
		half := length / 2
		tw, twq := tw[:half], twq[:half]
		tw[0] = 1
		for k := 1; k < half; k++ {
			tw[k] = uint32(uint64(tw[k-1]) * w % nttMod)
		}
		for k, v := range tw {
			twq[k] = uint32((uint64(v) << 32) / nttMod)
		}
		for i := 0; i < n; i += length {
			lo, hi := a[i:i+half:i+half], a[i+half:i+length:i+length]
			hi = hi[:len(lo)]
			for k := range lo {
				u := uint64(lo[k])
				h := uint64(hi[k])
				// v = h*w mod p, in [0, 2p) before the final correction.
				q := (h * uint64(twq[k])) >> 32
				v := (h*uint64(tw[k]) - q*nttMod) & 0xffffffff
				if v >= nttMod {
					v -= nttMod
				}
				s := u + v
				if s >= nttMod {
					s -= nttMod
				}
				lo[k] = uint32(s)
				d := u + nttMod - v
				if d >= nttMod {
					d -= nttMod
				}
				hi[k] = uint32(d)
			}
		}
	}
	if invert {
		inv := powMod(uint64(n), nttMod-2)
		for i := range a {
			a[i] = uint32(uint64(a[i]) * inv % nttMod)
		}
	}
}
