package sharing

import (
	"crypto/sha256"
	"fmt"
	"math/big"
)

// Version is the share encoding version written by this package.
const Version = 1

// gcmOverhead is the AES-GCM tag appended to every dispersal segment.
const gcmOverhead = 16

// keyBits is the size of the dispersal data key.
const keyBits = 256

// Share is one of the n pieces of a split. It is self-describing: with any
// t-1 other shares of the same split, and nothing else, it recovers the
// data. Share i is meant for node group i.
//
// A Share is a plain value: fields may be read freely; Verify checks that
// they are consistent and match Hash. Methods do not modify the share and
// are safe for concurrent use.
type Share struct {
	// Version is the encoding version (1).
	Version int
	// Scheme is the mode that produced the share.
	Scheme Scheme
	// SplitID is random and identical in all shares of one split.
	SplitID [16]byte
	// Threshold is t and Total is n.
	Threshold int
	Total     int
	// Index is the share's position, 0..n-1. In the CRT modes it selects
	// the public modulus; in dispersal mode the Reed-Solomon shard (indices
	// below t are data shards, the rest parity).
	Index int
	// SegmentSize is the number of data bytes covered by each payload frame
	// but the last (0 in asmuth-bloom mode, which has one frame).
	SegmentSize int
	// Length is the length of the whole data in bytes.
	Length int64
	// Exactly one of the following is set, matching Scheme.
	Paper       *PaperParams
	AsmuthBloom *AsmuthBloomParams
	Dispersal   *DispersalParams
	// Payload is the share data proper: the concatenated contents of its
	// frames (residues, or the Reed-Solomon shard of each segment).
	Payload []byte
	// Hash is SHA-256(ShardHash || trailer), where ShardHash is SHA-256 of
	// the encoded header and payload frames and the trailer is the encoded
	// part after the payload (see DESIGN.md, "Share encoding").
	Hash [32]byte
}

// PaperParams are the recovery parameters of a paper-mode share.
type PaperParams struct {
	// ModulusBits is k: the share's modulus is member Index of the public
	// prime family of k-bit primes (see Modulus). A multiple of 32 in
	// [64, 512], chosen from Length and t.
	ModulusBits int
	// ChunkSize is the number of data bytes read as one integer; every
	// chunk but the last has this length. ChunkSize = min(Length,
	// floor(t*(k-1)/8)), so any t moduli exceed every chunk value.
	ChunkSize int
	// Digest is SHA-256 of the whole data, as in SSDSM. Anyone can use it
	// to confirm a guess of the data.
	Digest [32]byte
}

// AsmuthBloomParams are the recovery parameters of an asmuth-bloom share.
type AsmuthBloomParams struct {
	// ModulusBits is k = 8*Length + 136 + t: the share's modulus is member
	// Index of the public coprime family of k-bit numbers, and d0 =
	// 2^(8*Length).
	ModulusBits int
}

// DispersalParams are the recovery parameters of a dispersal share.
type DispersalParams struct {
	// KeyModulusBits is k = 256 + 136 + t for the Asmuth-Bloom share of the
	// 256-bit data key.
	KeyModulusBits int
	// KeyShare is this share's Asmuth-Bloom residue of the data key,
	// big-endian, ceil(k/8) bytes.
	KeyShare []byte
	// NoncePrefix is the random first 7 bytes of every AES-GCM nonce of
	// the split.
	NoncePrefix [7]byte
	// Root is the RFC 6962 Merkle root over the n shard hashes.
	Root [32]byte
	// Tag is the AES-GCM manifest tag that authenticates Root, Length and
	// the segment count under the data key.
	Tag [16]byte
	// Proof is this share's RFC 9162 audit path to Root.
	Proof [][32]byte
}

// Modulus returns the public modulus of a paper or asmuth-bloom share, or
// nil for dispersal (whose key-share modulus is KeyModulus). It derives the
// family on first use, which for large n can take a fraction of a second.
func (s *Share) Modulus() (*big.Int, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	switch s.Scheme {
	case Paper:
		return new(big.Int).Set(getFamily(kindPrime, s.Paper.ModulusBits).moduli(s.Index + 1)[s.Index]), nil
	case AsmuthBloom:
		return new(big.Int).Set(getFamily(kindCoprime, s.AsmuthBloom.ModulusBits).moduli(s.Index + 1)[s.Index]), nil
	}
	return nil, nil
}

// KeyModulus returns the public Asmuth-Bloom modulus of a dispersal
// share's key share, or nil for the other schemes.
func (s *Share) KeyModulus() (*big.Int, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.Scheme != Dispersal {
		return nil, nil
	}
	return new(big.Int).Set(getFamily(kindCoprime, s.Dispersal.KeyModulusBits).moduli(s.Index + 1)[s.Index]), nil
}

// Verify checks that the share is well formed and that its content matches
// its Hash. Errors are *ShareError wrapping ErrTampered, ErrMalformed,
// ErrVersion or ErrUnknownScheme.
func (s *Share) Verify() error {
	if s == nil {
		return fmt.Errorf("%w: nil share", ErrMalformed)
	}
	_, err := s.verify()
	return err
}

// verify is Verify that also returns the shard hash.
func (s *Share) verify() ([32]byte, error) {
	if err := s.validate(); err != nil {
		return [32]byte{}, shareErr(s.Index, err)
	}
	shard, h := s.hashes()
	if h != s.Hash {
		return shard, shareErr(s.Index, ErrTampered)
	}
	return shard, nil
}

// ShardHash returns SHA-256 of the share's encoded header and payload: the
// leaf of the dispersal Merkle tree. The share must be well formed.
func (s *Share) ShardHash() ([32]byte, error) {
	if err := s.validate(); err != nil {
		return [32]byte{}, shareErr(s.Index, err)
	}
	sh, _ := s.hashes()
	return sh, nil
}

// hashes computes the shard hash and the share hash of a validated share.
func (s *Share) hashes() (shard, full [32]byte) {
	h := sha256.New()
	h.Write(s.appendHeader(nil))
	var fh [frameHeaderLen]byte
	s.eachFrame(func(data []byte, last bool) {
		putFrameHeader(fh[:], len(data), last)
		h.Write(fh[:])
		h.Write(data)
	})
	h.Sum(shard[:0])
	return shard, shareHash(shard, s.appendTrailer(nil))
}

func shareHash(shard [32]byte, trailer []byte) [32]byte {
	h := sha256.New()
	h.Write(shard[:])
	h.Write(trailer)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// eachFrame calls fn for every payload frame of a validated share.
func (s *Share) eachFrame(fn func(data []byte, last bool)) {
	p := s.Payload
	count := s.frameCount()
	full := s.fullFrameLen()
	for i := int64(0); i < count-1; i++ {
		fn(p[:full], false)
		p = p[full:]
	}
	fn(p, true)
}

// Paper-mode parameter rules.
const (
	paperMinModulusBits = 64
	paperMaxModulusBits = 512
)

// paperModulusBits is k for data of length n bytes and threshold t: the
// paper's "len(D)/t + 1" in bits, rounded up to a multiple of 32 and kept
// in [64, 512] so that the moduli are cheap to find and reduce.
func paperModulusBits(n int64, t int) int {
	need := (8*n+int64(t)-1)/int64(t) + 1
	if need >= paperMaxModulusBits {
		return paperMaxModulusBits
	}
	k := int((need + 31) / 32 * 32)
	if k < paperMinModulusBits {
		k = paperMinModulusBits
	}
	return k
}

// paperChunkSize is min(n, floor(t*(k-1)/8)).
func paperChunkSize(n int64, t, k int) int {
	c := int64(t) * int64(k-1) / 8
	if n < c {
		return int(n)
	}
	return int(c)
}

// paperSegmentSize rounds a requested segment size down to whole chunks.
func paperSegmentSize(requested, chunk int) int {
	if requested == 0 {
		requested = DefaultPaperSegmentSize
	}
	c := requested / chunk
	if c < 1 {
		c = 1
	}
	return c * chunk
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// frameCount is the number of payload frames.
func (s *Share) frameCount() int64 {
	if s.Scheme == AsmuthBloom {
		return 1
	}
	return ceilDiv(s.Length, int64(s.SegmentSize))
}

// frameLen is the payload length of a frame covering n data bytes.
func (s *Share) frameLen(n int64) int {
	switch s.Scheme {
	case Paper:
		return int(ceilDiv(n, int64(s.Paper.ChunkSize))) * s.Paper.ModulusBits / 8
	case AsmuthBloom:
		return (s.AsmuthBloom.ModulusBits + 7) / 8
	default:
		return int(ceilDiv(n+gcmOverhead, int64(s.Threshold)))
	}
}

// fullFrameLen is the payload length of every frame but the last.
func (s *Share) fullFrameLen() int {
	if s.Scheme == AsmuthBloom {
		return s.frameLen(s.Length)
	}
	return s.frameLen(int64(s.SegmentSize))
}

// lastFrameData is the number of data bytes covered by the last frame.
func (s *Share) lastFrameData() int64 {
	if s.Scheme == AsmuthBloom {
		return s.Length
	}
	return s.Length - (s.frameCount()-1)*int64(s.SegmentSize)
}

// payloadLen is the expected total payload length.
func (s *Share) payloadLen() int64 {
	c := s.frameCount()
	return (c-1)*int64(s.fullFrameLen()) + int64(s.frameLen(s.lastFrameData()))
}

// validateHeader checks the fields known before the payload: everything
// but Length, the trailer fields and the payload.
func (s *Share) validateHeader() error {
	if s.Version != Version {
		return fmt.Errorf("%w: %d", ErrVersion, s.Version)
	}
	if !s.Scheme.Valid() {
		return fmt.Errorf("%w: %d", ErrUnknownScheme, uint8(s.Scheme))
	}
	if s.Total < 1 || s.Total > MaxShares {
		return malformed("n = %d", s.Total)
	}
	if s.Threshold < 1 || s.Threshold > s.Total {
		return malformed("t = %d with n = %d", s.Threshold, s.Total)
	}
	if s.Index < 0 || s.Index >= s.Total {
		return malformed("index %d with n = %d", s.Index, s.Total)
	}
	set := 0
	for _, ok := range []bool{s.Paper != nil, s.AsmuthBloom != nil, s.Dispersal != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return malformed("%d parameter sets, want exactly one", set)
	}
	switch s.Scheme {
	case Paper:
		p := s.Paper
		if p == nil {
			return malformed("paper share without paper parameters")
		}
		if p.ModulusBits < paperMinModulusBits || p.ModulusBits > paperMaxModulusBits || p.ModulusBits%32 != 0 {
			return malformed("modulus bits %d", p.ModulusBits)
		}
		if p.ChunkSize < 1 || int64(p.ChunkSize) > int64(s.Threshold)*int64(p.ModulusBits-1)/8 {
			return malformed("chunk size %d", p.ChunkSize)
		}
		if s.SegmentSize < p.ChunkSize || s.SegmentSize > MaxSegmentSize || s.SegmentSize%p.ChunkSize != 0 {
			return malformed("segment size %d with chunk size %d", s.SegmentSize, p.ChunkSize)
		}
	case AsmuthBloom:
		a := s.AsmuthBloom
		if a == nil {
			return malformed("asmuth-bloom share without asmuth-bloom parameters")
		}
		if a.ModulusBits < abModulusBits(8, s.Threshold) || a.ModulusBits > abModulusBits(8*MaxSecretSize, s.Threshold) ||
			(a.ModulusBits-abExtraBits(s.Threshold))%8 != 0 {
			return malformed("modulus bits %d", a.ModulusBits)
		}
		if s.SegmentSize != 0 {
			return malformed("segment size %d in asmuth-bloom mode", s.SegmentSize)
		}
	case Dispersal:
		d := s.Dispersal
		if d == nil {
			return malformed("dispersal share without dispersal parameters")
		}
		if s.SegmentSize < MinSegmentSize || s.SegmentSize > MaxSegmentSize {
			return malformed("segment size %d", s.SegmentSize)
		}
		if d.KeyModulusBits != abModulusBits(keyBits, s.Threshold) {
			return malformed("key modulus bits %d", d.KeyModulusBits)
		}
		if len(d.KeyShare) != (d.KeyModulusBits+7)/8 {
			return malformed("key share of %d bytes", len(d.KeyShare))
		}
	}
	return nil
}

// validate checks that all fields are in range and consistent; it does not
// check the hash.
func (s *Share) validate() error {
	if err := s.validateHeader(); err != nil {
		return err
	}
	return s.validateTrailer()
}

// validateTrailer checks Length and the trailer fields against the header
// fields, and the payload length.
func (s *Share) validateTrailer() error {
	if err := s.validateLength(); err != nil {
		return err
	}
	if int64(len(s.Payload)) != s.payloadLen() {
		return malformed("payload of %d bytes, want %d", len(s.Payload), s.payloadLen())
	}
	return nil
}

// validateLength checks Length and the trailer fields against the header
// fields.
func (s *Share) validateLength() error {
	if s.Length < 1 || s.Length > MaxLength {
		return malformed("length %d", s.Length)
	}
	switch s.Scheme {
	case Paper:
		k := paperModulusBits(s.Length, s.Threshold)
		if s.Paper.ModulusBits != k || s.Paper.ChunkSize != paperChunkSize(s.Length, s.Threshold, k) {
			return malformed("paper parameters k=%d chunk=%d do not match length %d", s.Paper.ModulusBits, s.Paper.ChunkSize, s.Length)
		}
	case AsmuthBloom:
		if s.Length > MaxSecretSize || s.AsmuthBloom.ModulusBits != abModulusBits(8*int(s.Length), s.Threshold) {
			return malformed("asmuth-bloom modulus bits %d do not match length %d", s.AsmuthBloom.ModulusBits, s.Length)
		}
	case Dispersal:
		if s.frameCount() > 1<<32 {
			return malformed("%d segments", s.frameCount())
		}
		if len(s.Dispersal.Proof) != merklePathLen(s.Index, s.Total) {
			return malformed("proof of %d hashes, want %d", len(s.Dispersal.Proof), merklePathLen(s.Index, s.Total))
		}
	}
	if s.frameCount() > 1<<32 {
		return malformed("%d frames", s.frameCount())
	}
	return nil
}
