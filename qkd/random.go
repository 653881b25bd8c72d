package qkd

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/bits"
	mrand "math/rand/v2"
)

// source is a stream of uniform 64-bit words.
type source interface {
	Uint64() uint64
}

// cryptoSource buffers crypto/rand output.
type cryptoSource struct {
	buf [512]byte
	pos int
}

func newCryptoSource() *cryptoSource { return &cryptoSource{pos: 512} }

func (c *cryptoSource) Uint64() uint64 {
	if c.pos == len(c.buf) {
		// crypto/rand.Read never fails on supported platforms (Go >= 1.24
		// crashes the program instead of returning an error).
		_, _ = rand.Read(c.buf[:])
		c.pos = 0
	}
	v := binary.LittleEndian.Uint64(c.buf[c.pos:])
	c.pos += 8
	return v
}

// randomness hands out independent named streams. With a seed every stream is
// ChaCha8 keyed by SHA-256(seed || name), so runs are reproducible; without
// one every stream reads crypto/rand.
type randomness struct {
	seed []byte
}

func (r randomness) stream(name string) source {
	if r.seed == nil {
		return newCryptoSource()
	}
	h := sha256.New()
	h.Write([]byte("qledger/qkd/stream\x00"))
	h.Write(r.seed)
	h.Write([]byte{0})
	h.Write([]byte(name))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return mrand.NewChaCha8(k)
}

// threshold converts a probability into the 64-bit fixed-point threshold
// used by bernoulli; ok=false means probability one.
func threshold(p float64) (t uint64, one bool) {
	switch {
	case !(p > 0):
		return 0, false
	case p >= 1:
		return 0, true
	}
	x := math.Ldexp(p, 64)
	if x >= math.Ldexp(1, 64) {
		return 0, true
	}
	return uint64(x), false
}

// bernoulli returns 64 independent bits, each one with probability t/2^64
// (all ones if one is set). It compares 64 uniform lanes against t bit by bit
// from the top, drawing a fresh word per step and stopping as soon as every
// lane is decided or the remaining bits of t are zero: about 8 words per call
// for a generic p, one for p = 1/2, none for p = 0.
func bernoulli(src source, t uint64, one bool) uint64 {
	if one {
		return ^uint64(0)
	}
	if t == 0 {
		return 0
	}
	var res uint64
	und := ^uint64(0)
	for j := 63; j >= 0 && und != 0; j-- {
		r := src.Uint64()
		if t>>uint(j)&1 == 1 {
			res |= und &^ r
			und &= r
		} else {
			und &^= r
		}
		if t&(1<<uint(j)-1) == 0 {
			break
		}
	}
	return res
}

// uniformN returns a uniform integer in [0, n) by Lemire's method; n > 0.
func uniformN(src source, n uint64) uint64 {
	for {
		hi, lo := bits.Mul64(src.Uint64(), n)
		if lo >= n {
			return hi
		}
		if lo >= (-n)%n {
			return hi
		}
	}
}

// permutation returns a uniformly random permutation of [0, n) drawn from a
// ChaCha8 stream keyed by seed (Fisher-Yates). Both endpoints derive the same
// permutation from the same public seed; the algorithm is fixed here so that
// it cannot drift with the Go release.
func permutation(seed [32]byte, n int) []uint32 {
	src := mrand.NewChaCha8(seed)
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := uniformN(src, uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// randomBits returns n uniform bits from src.
func randomBits(src source, n int) *Bits {
	b := NewBits(n)
	for i := range b.w {
		b.w[i] = src.Uint64()
	}
	b.clearTail()
	return b
}

// sampleMask returns an n-bit mask with exactly k ones at uniformly random
// positions (Floyd's algorithm for k <= n/2, complement otherwise).
func sampleMask(src source, n, k int) *Bits {
	m := NewBits(n)
	if k <= 0 || n == 0 {
		return m
	}
	if k >= n {
		for i := 0; i < n; i++ {
			m.Set(i, 1)
		}
		return m
	}
	invert := k > n/2
	if invert {
		k = n - k
	}
	for j := n - k; j < n; j++ {
		t := int(uniformN(src, uint64(j+1)))
		if m.Bit(t) == 1 {
			m.Set(j, 1)
		} else {
			m.Set(t, 1)
		}
	}
	if invert {
		for i := range m.w {
			m.w[i] = ^m.w[i]
		}
		m.clearTail()
	}
	return m
}
