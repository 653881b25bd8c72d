package qkd

import (
	"fmt"
	"math/bits"
	"strings"
)

// Bits is a bit string packed into uint64 words. Bit i lives in word i/64 at
// position i%64 (least significant first); bits at positions >= Len in the
// last word are always zero. Hex and Bytes render bit 0 as the most
// significant bit of the first digit or byte, the order used by the seed
// paper's Table 4. The zero value is an empty string. A Bits is not safe for
// concurrent mutation.
type Bits struct {
	w []uint64
	n int
}

// NewBits returns n zero bits.
func NewBits(n int) *Bits {
	if n < 0 {
		n = 0
	}
	return &Bits{w: make([]uint64, (n+63)/64), n: n}
}

// BitsFromWords wraps words as an n-bit string, clearing bits past n. It
// returns nil if words is too short for n.
func BitsFromWords(words []uint64, n int) *Bits {
	if n < 0 || len(words) < (n+63)/64 {
		return nil
	}
	b := &Bits{w: words[:(n+63)/64], n: n}
	b.clearTail()
	return b
}

// ParseHex reads a hex string MSB-first: the first digit's high bit is bit 0.
func ParseHex(s string) (*Bits, error) {
	b := NewBits(4 * len(s))
	for i := 0; i < len(s); i++ {
		v, ok := hexVal(s[i])
		if !ok {
			return nil, fmt.Errorf("%w: %q at %d", ErrBadHex, s[i], i)
		}
		for j := 0; j < 4; j++ {
			if v>>(3-j)&1 == 1 {
				b.Set(4*i+j, 1)
			}
		}
	}
	return b, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// BitsFromBytes reads n bits MSB-first from p (bit 0 = high bit of p[0]).
func BitsFromBytes(p []byte, n int) *Bits {
	if n > 8*len(p) {
		n = 8 * len(p)
	}
	b := NewBits(n)
	for i := 0; i < n; i++ {
		if p[i/8]>>(7-i%8)&1 == 1 {
			b.w[i>>6] |= 1 << (i & 63)
		}
	}
	return b
}

// Len returns the number of bits.
func (b *Bits) Len() int {
	if b == nil {
		return 0
	}
	return b.n
}

// Words exposes the packed words (read only by convention).
func (b *Bits) Words() []uint64 { return b.w }

// Bit returns bit i as 0 or 1. It panics if i is out of range, like a slice.
func (b *Bits) Bit(i int) uint64 {
	if i < 0 || i >= b.n {
		panic(fmt.Sprintf("qkd: bit index %d out of range [0,%d)", i, b.n))
	}
	return b.w[i>>6] >> (i & 63) & 1
}

// Set sets bit i to v&1.
func (b *Bits) Set(i int, v uint64) {
	if i < 0 || i >= b.n {
		panic(fmt.Sprintf("qkd: bit index %d out of range [0,%d)", i, b.n))
	}
	m := uint64(1) << (i & 63)
	if v&1 == 1 {
		b.w[i>>6] |= m
	} else {
		b.w[i>>6] &^= m
	}
}

// Flip inverts bit i.
func (b *Bits) Flip(i int) {
	if i < 0 || i >= b.n {
		panic(fmt.Sprintf("qkd: bit index %d out of range [0,%d)", i, b.n))
	}
	b.w[i>>6] ^= 1 << (i & 63)
}

// Clone returns an independent copy.
func (b *Bits) Clone() *Bits {
	if b == nil {
		return NewBits(0)
	}
	c := &Bits{w: make([]uint64, len(b.w)), n: b.n}
	copy(c.w, b.w)
	return c
}

// OnesCount returns the number of one bits.
func (b *Bits) OnesCount() int {
	c := 0
	for _, w := range b.w {
		c += bits.OnesCount64(w)
	}
	return c
}

// Distance returns the Hamming distance to o; lengths must match.
func (b *Bits) Distance(o *Bits) int {
	if b.n != o.n {
		panic("qkd: Distance of different lengths")
	}
	c := 0
	for i, w := range b.w {
		c += bits.OnesCount64(w ^ o.w[i])
	}
	return c
}

// Equal reports whether b and o hold the same bits.
func (b *Bits) Equal(o *Bits) bool {
	if b.Len() != o.Len() {
		return false
	}
	for i, w := range b.w {
		if w != o.w[i] {
			return false
		}
	}
	return true
}

// Parity returns the parity (0 or 1) of bits [start, end).
func (b *Bits) Parity(start, end int) uint64 {
	if start < 0 || end > b.n || start > end {
		panic(fmt.Sprintf("qkd: parity range [%d,%d) out of [0,%d)", start, end, b.n))
	}
	if start == end {
		return 0
	}
	sw, ew := start>>6, (end-1)>>6
	lo := ^uint64(0) << (start & 63)
	hi := ^uint64(0) >> (63 - (end-1)&63)
	if sw == ew {
		return uint64(bits.OnesCount64(b.w[sw]&lo&hi)) & 1
	}
	x := b.w[sw]&lo ^ b.w[ew]&hi
	for _, w := range b.w[sw+1 : ew] {
		x ^= w
	}
	return uint64(bits.OnesCount64(x)) & 1
}

// Select returns the bits of b at the positions where mask is one, in order.
// mask must have b's length.
func (b *Bits) Select(mask *Bits) *Bits {
	if mask.n != b.n {
		panic("qkd: Select mask length differs")
	}
	out := NewBits(mask.OnesCount())
	var acc uint64
	k := 0
	ow := 0
	for i, m := range mask.w {
		src := b.w[i]
		if m == ^uint64(0) {
			// Fast path: a full word is kept.
			if k == 0 {
				out.w[ow] = src
			} else {
				out.w[ow] = acc | src<<k
				acc = src >> (64 - k)
			}
			ow++
			continue
		}
		for m != 0 {
			t := bits.TrailingZeros64(m)
			m &= m - 1
			acc |= (src >> t & 1) << k
			k++
			if k == 64 {
				out.w[ow] = acc
				ow++
				acc, k = 0, 0
			}
		}
	}
	if k > 0 {
		out.w[ow] = acc
	}
	return out
}

// Slice returns bits [start, end) as a new string.
func (b *Bits) Slice(start, end int) *Bits {
	if start < 0 || end > b.n || start > end {
		panic(fmt.Sprintf("qkd: slice [%d,%d) out of [0,%d)", start, end, b.n))
	}
	out := NewBits(end - start)
	for i := range out.w {
		out.w[i] = b.wordAt(start + 64*i)
	}
	out.clearTail()
	return out
}

// wordAt returns the 64 bits starting at bit position p (zeros past the end).
func (b *Bits) wordAt(p int) uint64 {
	i, s := p>>6, uint(p&63)
	if i >= len(b.w) {
		return 0
	}
	v := b.w[i] >> s
	if s != 0 && i+1 < len(b.w) {
		v |= b.w[i+1] << (64 - s)
	}
	return v
}

// Append returns the concatenation b || o as a new string.
func (b *Bits) Append(o *Bits) *Bits {
	out := NewBits(b.Len() + o.Len())
	copy(out.w, b.w)
	for i := 0; i < o.Len(); i += 64 {
		v := o.wordAt(i)
		p := b.n + i
		wi, s := p>>6, uint(p&63)
		out.w[wi] |= v << s
		if s != 0 && wi+1 < len(out.w) {
			out.w[wi+1] |= v >> (64 - s)
		}
	}
	out.clearTail()
	return out
}

// Even returns the bits at positions 0, 2, 4, ... and Odd those at 1, 3, 5, ...
func (b *Bits) Even() *Bits { return b.Select(alternating(b.n, 0)) }

// Odd returns the bits at odd positions (see Even).
func (b *Bits) Odd() *Bits { return b.Select(alternating(b.n, 1)) }

func alternating(n, phase int) *Bits {
	m := NewBits(n)
	pat := uint64(0x5555555555555555)
	if phase == 1 {
		pat <<= 1
	}
	for i := range m.w {
		m.w[i] = pat
	}
	m.clearTail()
	return m
}

// Bytes packs the bits MSB-first into ceil(Len/8) bytes, the last byte
// zero-padded in its low bits.
func (b *Bits) Bytes() []byte {
	p := make([]byte, (b.n+7)/8)
	for i := 0; i < b.n; i++ {
		if b.w[i>>6]>>(i&63)&1 == 1 {
			p[i/8] |= 1 << (7 - i%8)
		}
	}
	return p
}

// Hex renders the bits MSB-first as lowercase hex, zero-padding the last
// digit when Len is not a multiple of 4.
func (b *Bits) Hex() string {
	var sb strings.Builder
	const digits = "0123456789abcdef"
	for i := 0; i < b.n; i += 4 {
		var v byte
		for j := 0; j < 4; j++ {
			v <<= 1
			if i+j < b.n {
				v |= byte(b.w[(i+j)>>6] >> ((i + j) & 63) & 1)
			}
		}
		sb.WriteByte(digits[v])
	}
	return sb.String()
}

// String renders the bits as 0/1 characters, bit 0 first.
func (b *Bits) String() string {
	var sb strings.Builder
	for i := 0; i < b.n; i++ {
		sb.WriteByte(byte('0' + b.w[i>>6]>>(i&63)&1))
	}
	return sb.String()
}

func (b *Bits) clearTail() {
	if r := b.n & 63; r != 0 {
		b.w[len(b.w)-1] &= 1<<r - 1
	}
}

func trailingZeros(w uint64) int { return bits.TrailingZeros64(w) }
