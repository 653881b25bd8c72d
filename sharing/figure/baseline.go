package figure

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/klauspost/reedsolomon"
)

// Baseline is AES-256-GCM plus Reed-Solomon alone, in the same segments as
// the dispersal mode: per segment, one Seal into a reused buffer and one
// Encode; for recovery, one ReconstructData from the chosen t shards and
// one Open. No hashing, no framing, no key sharing, no I/O. It is what the
// dispersal mode's throughput is compared with.
type Baseline struct {
	t, n, seg int
	aead      cipher.AEAD
	enc       reedsolomon.Encoder
	nonce     []byte
	buf       []byte
	parity    [][]byte
	shards    [][]byte
	// stored holds every segment's shards after Split, for Recover.
	stored [][][]byte
	sizes  []int
}

// NewBaseline prepares a baseline for threshold t of n shares and the given
// segment size.
func NewBaseline(t, n, segment int) (*Baseline, error) {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	enc, err := reedsolomon.New(t, n-t)
	if err != nil {
		return nil, fmt.Errorf("figure: reed-solomon: %w", err)
	}
	full := (segment + aead.Overhead() + t - 1) / t
	b := &Baseline{
		t: t, n: n, seg: segment, aead: aead, enc: enc,
		nonce:  make([]byte, aead.NonceSize()),
		buf:    make([]byte, t*full),
		parity: make([][]byte, n-t),
		shards: make([][]byte, n),
	}
	for i := range b.parity {
		b.parity[i] = make([]byte, full)
	}
	return b, nil
}

// encodeSegment seals one segment into b.buf and computes its parity.
func (b *Baseline) encodeSegment(seg []byte, i int) ([][]byte, error) {
	b.nonce[0], b.nonce[1], b.nonce[2], b.nonce[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	ct := b.aead.Seal(b.buf[:0], b.nonce, seg, nil)
	f := (len(ct) + b.t - 1) / b.t
	clear(b.buf[len(ct) : b.t*f])
	for j := 0; j < b.t; j++ {
		b.shards[j] = b.buf[j*f : (j+1)*f]
	}
	for j := range b.parity {
		b.shards[b.t+j] = b.parity[j][:f]
	}
	if err := b.enc.Encode(b.shards); err != nil {
		return nil, err
	}
	return b.shards, nil
}

// Split encrypts and encodes data segment by segment, discarding the
// shards. This is the timed split.
func (b *Baseline) Split(data []byte) error {
	for i, off := 0, 0; off < len(data); i, off = i+1, off+b.seg {
		if _, err := b.encodeSegment(data[off:min(off+b.seg, len(data))], i); err != nil {
			return err
		}
	}
	return nil
}

// Store encrypts and encodes data and keeps every shard, for Recover
// (untimed).
func (b *Baseline) Store(data []byte) error {
	b.stored, b.sizes = nil, nil
	for i, off := 0, 0; off < len(data); i, off = i+1, off+b.seg {
		seg := data[off:min(off+b.seg, len(data))]
		shards, err := b.encodeSegment(seg, i)
		if err != nil {
			return err
		}
		cp := make([][]byte, len(shards))
		for j, s := range shards {
			cp[j] = append([]byte(nil), s...)
		}
		b.stored = append(b.stored, cp)
		b.sizes = append(b.sizes, len(seg))
	}
	return nil
}

// Recover rebuilds and decrypts every stored segment from the shards with
// the given indices, discarding the plaintext. This is the timed recovery.
func (b *Baseline) Recover(idx []int) error {
	full := len(b.buf) / b.t
	work := make([][]byte, b.n)
	for i, seg := range b.stored {
		f := len(seg[0])
		clear(work)
		for _, j := range idx {
			work[j] = seg[j]
		}
		for j := 0; j < b.t; j++ {
			if work[j] == nil {
				work[j] = b.buf[j*full : j*full : j*full+f]
			}
		}
		if err := b.enc.ReconstructData(work); err != nil {
			return err
		}
		for j := 0; j < b.t; j++ {
			copy(b.buf[j*f:], work[j])
		}
		b.nonce[0], b.nonce[1], b.nonce[2], b.nonce[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		if _, err := b.aead.Open(b.buf[:0], b.nonce, b.buf[:b.sizes[i]+b.aead.Overhead()], nil); err != nil {
			return err
		}
	}
	return nil
}
