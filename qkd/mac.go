package qkd

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
)

// Wegman–Carter authentication: tag = (H_k(m) + s) mod p with p = 2^127 - 1,
// H_k a polynomial hash evaluated at the secret point k over 15-byte blocks
// (each with a 2^120 marker so the encoding is injective), and s a fresh
// one-time pad per message. H is epsilon-almost-delta-universal with
// epsilon = L/p for L blocks, so a forger succeeds with probability at most
// L/2^127 per attempt, regardless of computing power, as long as k and every
// s are secret and each s is used once.

const (
	macKeyBytes = 16 // one field element from 127 key bits (the top bit is dropped)
	macTagBytes = 16
)

type u128 struct{ hi, lo uint64 }

const mask63 = 1<<63 - 1

func (a u128) reduce() u128 {
	// a < 2^128; fold bit 127 down: 2^127 = 1 mod p.
	top := a.hi >> 63
	r := u128{a.hi & mask63, a.lo}
	var c uint64
	r.lo, c = bits.Add64(r.lo, top, 0)
	r.hi += c
	if r.hi == mask63 && r.lo == ^uint64(0) { // r == p
		return u128{}
	}
	return r
}

func addMod(a, b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c) // a, b < 2^127 so no overflow past 2^128
	return u128{hi, lo}.reduce()
}

func mulMod(a, b u128) u128 {
	// 256-bit product r3:r2:r1:r0 of two values below 2^127.
	h00, l00 := bits.Mul64(a.lo, b.lo)
	h01, l01 := bits.Mul64(a.lo, b.hi)
	h10, l10 := bits.Mul64(a.hi, b.lo)
	h11, l11 := bits.Mul64(a.hi, b.hi)
	r0 := l00
	r1, c := bits.Add64(h00, l01, 0)
	r2, c2 := bits.Add64(h01, l11, c)
	r3 := h11 + c2
	r1, c = bits.Add64(r1, l10, 0)
	r2, c2 = bits.Add64(r2, h10, c)
	r3 += c2
	// x = low127 + x>>127 (mod p).
	low := u128{r1 & mask63, r0}
	high := u128{r3<<1 | r2>>63, r2<<1 | r1>>63}
	return addMod(low.reduce(), high.reduce())
}

func u128FromBytes(p []byte) u128 {
	return u128{binary.BigEndian.Uint64(p[:8]) & mask63, binary.BigEndian.Uint64(p[8:16])}.reduce()
}

func (a u128) bytes() []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return b[:]
}

// polyHash evaluates the message polynomial at k by Horner's rule.
func polyHash(k u128, msg []byte) u128 {
	var h u128
	var blk [16]byte
	for len(msg) > 0 {
		n := copy(blk[1:], msg)
		msg = msg[n:]
		clear(blk[1+n:])
		// value = 2^(8n) + chunk as a big-endian n-byte number
		m := chunkValue(blk[1:1+n], n)
		h = mulMod(addMod(h, m), k)
	}
	return h
}

func chunkValue(c []byte, n int) u128 {
	var v u128
	for _, b := range c {
		v = u128{v.hi<<8 | v.lo>>56, v.lo<<8 | uint64(b)}
	}
	// marker bit at position 8n (n <= 15, so below bit 121)
	if 8*n >= 64 {
		v.hi |= 1 << (8*n - 64)
	} else {
		v.lo |= 1 << (8 * n)
	}
	return v
}

// macTag computes the Wegman–Carter tag of msg.
func macTag(key, pad []byte, msg []byte) []byte {
	h := polyHash(u128FromBytes(key), msg)
	return addMod(h, u128FromBytes(pad)).bytes()
}

// padBytes is the size of the one-time pad per message.
const padBytes = macTagBytes

// maxPadSkip bounds how far ahead of its high-water mark an endpoint accepts
// the pad offset of a block's first message, so a forger cannot make it burn
// key material.
const maxPadSkip = 64

// AuthStore is one endpoint's supply of secret authentication key: a
// polynomial hash key fixed for the link and a stream of one-time pads
// indexed from 0. A pad is used at most once (to send or to check one
// message): using pad j moves the high-water mark past j and erases every
// pad below it. Both endpoints start from the same bootstrap key, top up
// with the same generated key bits after each completed block, and so hold
// identical streams. Safe for concurrent use.
type AuthStore struct {
	mu       sync.Mutex
	hashKey  [macKeyBytes]byte
	pads     []byte // pads base, base+1, ...
	base     uint64
	hwm      uint64
	used     uint64 // pads consumed (used or skipped) since creation
	refilled int    // bytes added by Refill since creation
}

// MinBootstrapBytes is the smallest accepted bootstrap key: the 16-byte hash
// key and one 16-byte pad.
const MinBootstrapBytes = 32

// NewAuthStore starts a store from a pre-shared bootstrap key: the first 16
// bytes key the hash, the rest are pads. A hash key that is 0 or 1 as a
// field element is refused: at 0 every message hashes to 0, so a tag is
// its pad whatever the message; at 1 the hash is a plain sum of blocks,
// unchanged when blocks are reordered. Either lets a forger who sees one
// tag put it on another message.
func NewAuthStore(bootstrap []byte) (*AuthStore, error) {
	if len(bootstrap) < MinBootstrapBytes {
		return nil, fmt.Errorf("%w: bootstrap key of %d bytes, need >= %d", ErrInvalidConfig, len(bootstrap), MinBootstrapBytes)
	}
	if k := u128FromBytes(bootstrap[:macKeyBytes]); k == (u128{}) || k == (u128{lo: 1}) {
		return nil, fmt.Errorf("%w: weak authentication hash key (%d as a field element)", ErrInvalidConfig, k.lo)
	}
	s := &AuthStore{}
	copy(s.hashKey[:], bootstrap)
	s.pads = append([]byte(nil), bootstrap[macKeyBytes:]...)
	return s, nil
}

// HighWater is the index of the next unused pad.
func (s *AuthStore) HighWater() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hwm
}

// Available is the number of unused pad bytes.
func (s *AuthStore) Available() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.availableLocked()
}

func (s *AuthStore) availableLocked() int {
	total := uint64(len(s.pads) / padBytes)
	if s.hwm-s.base >= total {
		return 0
	}
	return int(total-(s.hwm-s.base)) * padBytes
}

// Consumed is the number of pad bytes used or skipped since creation.
func (s *AuthStore) Consumed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.used) * padBytes
}

// Refill appends generated key bytes to the pad stream. Only whole pads are
// usable; a trailing partial pad waits for the next refill.
func (s *AuthStore) Refill(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pads = append(s.pads, p...)
	s.refilled += len(p)
}

// SkipTo discards every pad below j (resynchronisation after an abort).
func (s *AuthStore) SkipTo(j uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(j)
}

func (s *AuthStore) advanceLocked(j uint64) {
	if j <= s.hwm {
		return
	}
	s.used += j - s.hwm
	s.hwm = j
	drop := (s.hwm - s.base) * padBytes
	if drop > uint64(len(s.pads)) {
		drop = uint64(len(s.pads) / padBytes * padBytes)
	}
	clear(s.pads[:drop])
	s.pads = s.pads[drop:]
	s.base += drop / padBytes
}

// take returns pad j and marks every pad up to j as used.
func (s *AuthStore) take(j uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j < s.hwm {
		return nil, fmt.Errorf("%w: pad %d already used (next %d)", ErrAuthFailed, j, s.hwm)
	}
	if j >= s.base+uint64(len(s.pads)/padBytes) {
		return nil, fmt.Errorf("%w: pad %d, %d bytes left", ErrAuthKeyExhausted, j, s.availableLocked())
	}
	off := (j - s.base) * padBytes
	pad := append([]byte(nil), s.pads[off:off+padBytes]...)
	s.advanceLocked(j + 1)
	return pad, nil
}

// seal encodes m (its Offset already set) and appends its tag.
func (s *AuthStore) seal(m *Message) ([]byte, error) {
	body, err := m.appendBody(make([]byte, 0, 64))
	if err != nil {
		return nil, err
	}
	pad, err := s.take(m.Offset)
	if err != nil {
		return nil, err
	}
	return append(body, macTag(s.hashKey[:], pad, body)...), nil
}

// peekOffset returns the pad offset claimed by a framed message.
func peekOffset(b []byte) (uint64, error) {
	if len(b) < msgHeaderLen+macTagBytes || b[0] != msgMagic0 || b[1] != msgMagic1 {
		return 0, fmt.Errorf("%w: short or bad frame (%d bytes)", ErrMalformed, len(b))
	}
	return binary.BigEndian.Uint64(b[12:20]), nil
}

// open checks the tag of a framed message with the pad at the claimed
// offset, then decodes it. The pad is spent whether or not the tag is good.
func (s *AuthStore) open(b []byte) (*Message, error) {
	off, err := peekOffset(b)
	if err != nil {
		return nil, err
	}
	body, tag := b[:len(b)-macTagBytes], b[len(b)-macTagBytes:]
	pad, err := s.take(off)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(macTag(s.hashKey[:], pad, body), tag) != 1 {
		return nil, fmt.Errorf("%w: bad tag at pad %d", ErrAuthFailed, off)
	}
	return DecodeMessage(body)
}

// availableFrom is the number of pad bytes with index >= j.
func (s *AuthStore) availableFrom(j uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.base + uint64(len(s.pads)/padBytes)
	if j >= end {
		return 0
	}
	return int(end-j) * padBytes
}
