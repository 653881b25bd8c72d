package qkd

import (
	"fmt"
	"math/bits"
	"sync"
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
	nttForward(a)
	nttForward(b)
	for i := range a {
		a[i] = uint32(uint64(a[i]) * uint64(b[i]) % nttMod)
	}
	nttInverse(a)
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

// nttTables holds, for every butterfly level with half-length h (1, 2, 4,
// ..., n/2), the twiddles w_{2h}^k (k < h) at offset h-1, with Shoup's
// precomputed quotients w' = floor(w 2^32 / p) so that each butterfly
// multiplies without a division.
type nttTables struct {
	w, wq []uint32
}

var nttCache sync.Map // key n<<1 | inverse -> *nttTables

func tablesFor(n int, inverse bool) *nttTables {
	key := n<<1 | map[bool]int{false: 0, true: 1}[inverse]
	if t, ok := nttCache.Load(key); ok {
		return t.(*nttTables)
	}
	t := &nttTables{w: make([]uint32, n), wq: make([]uint32, n)}
	for h := 1; h < n; h <<= 1 {
		w := powMod(nttRoot, (nttMod-1)/uint64(2*h))
		if inverse {
			w = powMod(w, nttMod-2)
		}
		x := uint64(1)
		for k := 0; k < h; k++ {
			t.w[h-1+k] = uint32(x)
			t.wq[h-1+k] = uint32((x << 32) / nttMod)
			x = x * w % nttMod
		}
	}
	if n <= 1<<22 { // keep at most a few tens of MiB of tables
		nttCache.Store(key, t)
	}
	return t
}

// mulShoup returns h*w mod p given w' = floor(w 2^32 / p).
func mulShoup(h, w, wq uint64) uint64 {
	q := (h * wq) >> 32
	v := (h*w - q*nttMod) & 0xffffffff
	if v >= nttMod {
		v -= nttMod
	}
	return v
}

// nttForward is a decimation-in-frequency transform: natural order in,
// bit-reversed order out (len a power of two <= 2^27).
func nttForward(a []uint32) {
	n := len(a)
	t := tablesFor(n, false)
	for h := n / 2; h >= 1; h >>= 1 {
		w, wq := t.w[h-1:2*h-1], t.wq[h-1:2*h-1]
		for i := 0; i < n; i += 2 * h {
			lo, hi := a[i:i+h:i+h], a[i+h:i+2*h:i+2*h]
			hi = hi[:len(lo)]
			w, wq := w[:len(lo)], wq[:len(lo)]
			for k := range lo {
				u, v := uint64(lo[k]), uint64(hi[k])
				s := u + v
				if s >= nttMod {
					s -= nttMod
				}
				lo[k] = uint32(s)
				hi[k] = uint32(mulShoup(u+nttMod-v, uint64(w[k]), uint64(wq[k])))
			}
		}
	}
}

// nttInverse is a decimation-in-time inverse transform: bit-reversed order
// in, natural order out, scaled by 1/n.
func nttInverse(a []uint32) {
	n := len(a)
	t := tablesFor(n, true)
	for h := 1; h < n; h <<= 1 {
		w, wq := t.w[h-1:2*h-1], t.wq[h-1:2*h-1]
		for i := 0; i < n; i += 2 * h {
			lo, hi := a[i:i+h:i+h], a[i+h:i+2*h:i+2*h]
			hi = hi[:len(lo)]
			w, wq := w[:len(lo)], wq[:len(lo)]
			for k := range lo {
				u := uint64(lo[k])
				v := mulShoup(uint64(hi[k]), uint64(w[k]), uint64(wq[k]))
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
	inv := powMod(uint64(n), nttMod-2)
	invq := (inv << 32) / nttMod
	for i := range a {
		a[i] = uint32(mulShoup(uint64(a[i]), inv, invq))
	}
}
