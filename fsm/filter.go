package fsm

import (
	"math/bits"
)

// A filter is a blocked Bloom filter of the short keys of one sealed
// epoch, or group of epochs, of the transaction index (txindex.go): it
// says "not here" for all but ~0.1% of the keys it does not hold, so a
// lookup reads the index of about one epoch however many are sealed.
// Each key sets filterProbes bits inside one 64-byte block (one cache
// line), chosen by a hash of the key, at filterBitsPerKey bits per leaf
// of a full epoch or group. Everything here is part of the on-disk
// format.
type filter []byte

const (
	filterBlock      = 64 // bytes
	filterBitsPerKey = 16
	filterProbes     = 7 // 9-bit positions from one 64-bit hash
)

// newFilter returns an empty filter sized for n keys.
func newFilter(n int) filter {
	blocks := max(1, n*filterBitsPerKey/8/filterBlock)
	return make(filter, blocks*filterBlock)
}

// wellFormed reports whether f is a whole number of blocks, at least one.
func (f filter) wellFormed() bool { return len(f) >= filterBlock && len(f)%filterBlock == 0 }

// keyHash mixes a short key (its first 8 bytes, big-endian, zero-padded)
// into 64 bits: splitmix64's finalizer, so that IDs chosen to share
// leading bits still spread over the blocks.
func keyHash(key []byte) uint64 {
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(key) {
			p |= uint64(key[i])
		}
	}
	p ^= p >> 30
	p *= 0xbf58476d1ce4e5b9
	p ^= p >> 27
	p *= 0x94d049bb133111eb
	return p ^ p>>31
}

// block returns the block of f key falls in and the hash that places
// its bits there.
func (f filter) block(key []byte) ([]byte, uint64) {
	h := keyHash(key)
	i, _ := bits.Mul64(h, uint64(len(f)/filterBlock))
	// The block came from h's high bits; the positions from a remix.
	h = bits.RotateLeft64(h*0x9e3779b97f4a7c15, 29)
	return f[i*filterBlock : (i+1)*filterBlock], h
}

func (f filter) add(key []byte) {
	b, h := f.block(key)
	for range filterProbes {
		bit := h & (filterBlock*8 - 1)
		b[bit>>3] |= 1 << (bit & 7)
		h >>= 9
	}
}

// mayHold reports whether key may be among the keys added: false means
// it is not. A filter that is not well formed may hold every key.
func (f filter) mayHold(key []byte) bool {
	if !f.wellFormed() {
		return true
	}
	b, h := f.block(key)
	for range filterProbes {
		bit := h & (filterBlock*8 - 1)
		if b[bit>>3]&(1<<(bit&7)) == 0 {
			return false
		}
		h >>= 9
	}
	return true
}
