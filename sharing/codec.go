package sharing

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Binary share encoding, version 1. All integers are big-endian and of
// fixed width, so the encoding of a share is unique.
//
//	header  = "QSHR" | version u8 | scheme u8 | t u8 | n u8 | index u8 |
//	          split ID [16] | segment size u32 | params length u16 | params
//	params  = paper:        modulus bits u16 | chunk size u32
//	          asmuth-bloom: modulus bits u16
//	          dispersal:    key modulus bits u16 | nonce prefix [7] | key share [ceil(bits/8)]
//	frame   = flag u8 (0 = more follow, 1 = last) | length u32 | payload bytes
//	trailer = data length u64 | extra length u16 | extra
//	extra   = paper:        SHA-256 of the data [32]
//	          asmuth-bloom: empty
//	          dispersal:    Merkle root [32] | manifest tag [16] | proof count u8 | proof [32 each]
//	share   = header | frame... | trailer | hash [32]
//
// ShardHash = SHA-256(header | frames) and Hash = SHA-256(ShardHash |
// trailer). The frames of a share are determined by its length and
// parameters; decoding rejects any other framing, trailing bytes, unknown
// versions and schemes, and fields out of range.

var magic = [4]byte{'Q', 'S', 'H', 'R'}

const (
	headerFixedLen  = 4 + 1 + 1 + 1 + 1 + 1 + 16 + 4 + 2
	frameHeaderLen  = 1 + 4
	trailerFixedLen = 8 + 2
	maxParamsLen    = 2 + 7 + (abModulusBitsMax+7)/8
	maxExtraLen     = 32 + 16 + 1 + 32*maxProofLen
	// abModulusBitsMax bounds key modulus bits: 256 + 136 + 255.
	abModulusBitsMax = keyBits + 136 + MaxShares
)

func (s *Share) appendParams(b []byte) []byte {
	switch s.Scheme {
	case Paper:
		b = binary.BigEndian.AppendUint16(b, uint16(s.Paper.ModulusBits))
		b = binary.BigEndian.AppendUint32(b, uint32(s.Paper.ChunkSize))
	case AsmuthBloom:
		b = binary.BigEndian.AppendUint16(b, uint16(s.AsmuthBloom.ModulusBits))
	case Dispersal:
		b = binary.BigEndian.AppendUint16(b, uint16(s.Dispersal.KeyModulusBits))
		b = append(b, s.Dispersal.NoncePrefix[:]...)
		b = append(b, s.Dispersal.KeyShare...)
	}
	return b
}

// appendHeader encodes the header of a share whose header fields are valid.
func (s *Share) appendHeader(b []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, byte(s.Version), byte(s.Scheme), byte(s.Threshold), byte(s.Total), byte(s.Index))
	b = append(b, s.SplitID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(s.SegmentSize))
	params := s.appendParams(nil)
	b = binary.BigEndian.AppendUint16(b, uint16(len(params)))
	return append(b, params...)
}

func (s *Share) appendExtra(b []byte) []byte {
	switch s.Scheme {
	case Paper:
		b = append(b, s.Paper.Digest[:]...)
	case Dispersal:
		d := s.Dispersal
		b = append(b, d.Root[:]...)
		b = append(b, d.Tag[:]...)
		b = append(b, byte(len(d.Proof)))
		for _, h := range d.Proof {
			b = append(b, h[:]...)
		}
	}
	return b
}

// appendTrailer encodes the trailer (without the hash).
func (s *Share) appendTrailer(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(s.Length))
	extra := s.appendExtra(nil)
	b = binary.BigEndian.AppendUint16(b, uint16(len(extra)))
	return append(b, extra...)
}

func putFrameHeader(b []byte, n int, last bool) {
	b[0] = 0
	if last {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:], uint32(n))
}

// MarshalBinary returns the canonical encoding of a well-formed share. It
// encodes Hash as it is; it does not check it.
func (s *Share) MarshalBinary() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, shareErr(s.Index, err)
	}
	b := make([]byte, 0, s.EncodedLen())
	b = s.appendHeader(b)
	var fh [frameHeaderLen]byte
	s.eachFrame(func(data []byte, last bool) {
		putFrameHeader(fh[:], len(data), last)
		b = append(b, fh[:]...)
		b = append(b, data...)
	})
	b = s.appendTrailer(b)
	return append(b, s.Hash[:]...), nil
}

// EncodedLen is the length of the binary encoding of a well-formed share:
// what a node stores for it.
func (s *Share) EncodedLen() int64 {
	return int64(len(s.appendHeader(nil))) + s.frameCount()*frameHeaderLen + int64(len(s.Payload)) +
		int64(len(s.appendTrailer(nil))) + 32
}

// UnmarshalBinary decodes a share. It checks the structure, not the hash:
// call Verify for that. The payload is copied.
func (s *Share) UnmarshalBinary(b []byte) error {
	d, err := DecodeShare(b)
	if err != nil {
		return err
	}
	*s = *d
	return nil
}

// DecodeShare decodes the binary encoding of one share, rejecting
// malformed or trailing bytes. It does not check the hash (see Verify).
func DecodeShare(b []byte) (*Share, error) {
	r := &shareReader{r: &byteSource{b: b}}
	s, err := r.readAll()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// byteSource is an io.Reader over a byte slice that knows what is left.
type byteSource struct{ b []byte }

func (r *byteSource) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// shareReader parses one encoded share from a stream, frame by frame,
// computing its hashes as it goes.
type shareReader struct {
	r      io.Reader
	s      Share
	hash   shardHasher
	shard  [32]byte
	frames int64
	// payload and lastLen count what nextFrame has read.
	payload int64
	lastLen int
	done    bool
	fh      [frameHeaderLen]byte
}

// readFull reads exactly len(p) bytes; a short read is ErrMalformed.
func readFull(r io.Reader, p []byte, what string) error {
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return malformed("truncated %s", what)
		}
		return fmt.Errorf("sharing: read %s: %w", what, err)
	}
	return nil
}

// readHeader reads and validates the header.
func (sr *shareReader) readHeader() error {
	var fixed [headerFixedLen]byte
	if err := readFull(sr.r, fixed[:], "header"); err != nil {
		return err
	}
	if [4]byte(fixed[:4]) != magic {
		return malformed("bad magic")
	}
	s := &sr.s
	s.Version = int(fixed[4])
	if s.Version != Version {
		return fmt.Errorf("%w: %d", ErrVersion, s.Version)
	}
	s.Scheme = Scheme(fixed[5])
	if !s.Scheme.Valid() {
		return fmt.Errorf("%w: code %d", ErrUnknownScheme, fixed[5])
	}
	s.Threshold, s.Total, s.Index = int(fixed[6]), int(fixed[7]), int(fixed[8])
	copy(s.SplitID[:], fixed[9:25])
	s.SegmentSize = int(binary.BigEndian.Uint32(fixed[25:29]))
	plen := int(binary.BigEndian.Uint16(fixed[29:31]))
	if plen > maxParamsLen {
		return malformed("parameters of %d bytes", plen)
	}
	params := make([]byte, plen)
	if err := readFull(sr.r, params, "parameters"); err != nil {
		return err
	}
	if err := s.parseParams(params); err != nil {
		return err
	}
	if err := s.validateHeader(); err != nil {
		return err
	}
	sr.hash.init(s.appendHeader(nil))
	return nil
}

func (s *Share) parseParams(p []byte) error {
	switch s.Scheme {
	case Paper:
		if len(p) != 6 {
			return malformed("paper parameters of %d bytes", len(p))
		}
		s.Paper = &PaperParams{
			ModulusBits: int(binary.BigEndian.Uint16(p)),
			ChunkSize:   int(binary.BigEndian.Uint32(p[2:])),
		}
	case AsmuthBloom:
		if len(p) != 2 {
			return malformed("asmuth-bloom parameters of %d bytes", len(p))
		}
		s.AsmuthBloom = &AsmuthBloomParams{ModulusBits: int(binary.BigEndian.Uint16(p))}
	case Dispersal:
		if len(p) < 9 {
			return malformed("dispersal parameters of %d bytes", len(p))
		}
		d := &DispersalParams{KeyModulusBits: int(binary.BigEndian.Uint16(p))}
		copy(d.NoncePrefix[:], p[2:9])
		d.KeyShare = append([]byte(nil), p[9:]...)
		s.Dispersal = d
	}
	return nil
}

// readFrameHeader reads the next frame header and checks its length: every
// frame but the last must be full (fullFrameLen), the last must not be
// longer and no frame is empty.
func (sr *shareReader) readFrameHeader() (n int, last bool, err error) {
	if sr.done {
		return 0, false, malformed("read past the last frame")
	}
	if err := readFull(sr.r, sr.fh[:], "frame header"); err != nil {
		return 0, false, err
	}
	flag := sr.fh[0]
	size := int64(binary.BigEndian.Uint32(sr.fh[1:]))
	full := int64(sr.s.fullFrameLen())
	switch {
	case flag > 1:
		return 0, false, malformed("frame flag %d", flag)
	case flag == 0 && size != full:
		return 0, false, malformed("frame of %d bytes, want %d", size, full)
	case size > full:
		return 0, false, malformed("frame of %d bytes exceeds %d", size, full)
	case size == 0:
		return 0, false, malformed("empty frame")
	}
	sr.frames++
	if sr.frames > 1<<32 {
		return 0, false, malformed("too many frames")
	}
	sr.done = flag == 1
	return int(size), sr.done, nil
}

// readFrameBody reads the body of the frame whose header was just read.
func (sr *shareReader) readFrameBody(dst []byte) error {
	if err := readFull(sr.r, dst, "frame"); err != nil {
		return err
	}
	sr.hash.write(sr.fh[:])
	sr.hash.write(dst)
	return nil
}

// nextFrame reads the next frame into dst, which must have room for a full
// frame. It returns the frame length and whether it is the last.
func (sr *shareReader) nextFrame(dst []byte) (int, bool, error) {
	n, last, err := sr.readFrameHeader()
	if err != nil {
		return 0, false, err
	}
	if n > len(dst) {
		return 0, false, malformed("frame of %d bytes exceeds buffer", n)
	}
	if err := sr.readFrameBody(dst[:n]); err != nil {
		return 0, false, err
	}
	sr.payload += int64(n)
	sr.lastLen = n
	return n, last, nil
}

// readTrailer reads the trailer and hash after the last frame and checks
// them against the frames seen (payloadLen bytes in all, the last lastLen
// long); with requireEOF it also checks that nothing follows. It does not
// check the hash (see checkHash).
func (sr *shareReader) readTrailer(payloadLen int64, lastLen int, requireEOF bool) error {
	var fixed [trailerFixedLen]byte
	if err := readFull(sr.r, fixed[:], "trailer"); err != nil {
		return err
	}
	s := &sr.s
	length := binary.BigEndian.Uint64(fixed[:8])
	if length == 0 || length > MaxLength {
		return malformed("length %d", length)
	}
	s.Length = int64(length)
	elen := int(binary.BigEndian.Uint16(fixed[8:]))
	if elen > maxExtraLen {
		return malformed("trailer of %d bytes", elen)
	}
	rest := make([]byte, elen+32)
	if err := readFull(sr.r, rest, "trailer"); err != nil {
		return err
	}
	if err := s.parseExtra(rest[:elen]); err != nil {
		return err
	}
	copy(s.Hash[:], rest[elen:])
	if requireEOF {
		var one [1]byte
		if n, _ := io.ReadFull(sr.r, one[:]); n != 0 {
			return malformed("trailing bytes")
		}
	}
	if err := s.validateLength(); err != nil {
		return err
	}
	if sr.frames != s.frameCount() || payloadLen != s.payloadLen() || lastLen != s.frameLen(s.lastFrameData()) {
		return malformed("frames do not match length %d", s.Length)
	}
	sr.shard = sr.hash.sum()
	return nil
}

// checkHash compares the share's hash with the one computed while reading.
func (sr *shareReader) checkHash() error {
	if shareHash(sr.shard, sr.s.appendTrailer(nil)) != sr.s.Hash {
		return ErrTampered
	}
	return nil
}

func (s *Share) parseExtra(e []byte) error {
	switch s.Scheme {
	case Paper:
		if len(e) != 32 {
			return malformed("paper trailer of %d bytes", len(e))
		}
		copy(s.Paper.Digest[:], e)
	case AsmuthBloom:
		if len(e) != 0 {
			return malformed("asmuth-bloom trailer of %d bytes", len(e))
		}
	case Dispersal:
		if len(e) < 49 || (len(e)-49)%32 != 0 || int(e[48]) != (len(e)-49)/32 {
			return malformed("dispersal trailer of %d bytes", len(e))
		}
		d := s.Dispersal
		copy(d.Root[:], e[:32])
		copy(d.Tag[:], e[32:48])
		d.Proof = make([][32]byte, e[48])
		for i := range d.Proof {
			copy(d.Proof[i][:], e[49+32*i:])
		}
	}
	return nil
}

// readAll decodes a whole share into memory, requiring EOF after it. It
// does not check the hash.
func (sr *shareReader) readAll() (*Share, error) {
	if err := sr.readHeader(); err != nil {
		return nil, err
	}
	var payload []byte
	last := 0
	for !sr.done {
		n, _, err := sr.readFrameHeader()
		if err != nil {
			return nil, err
		}
		if bs, ok := sr.r.(*byteSource); ok && n > len(bs.b) {
			return nil, malformed("truncated frame")
		}
		off := len(payload)
		payload = append(payload, make([]byte, n)...)
		if err := sr.readFrameBody(payload[off:]); err != nil {
			return nil, err
		}
		last = n
	}
	if err := sr.readTrailer(int64(len(payload)), last, true); err != nil {
		return nil, err
	}
	s := sr.s
	s.Payload = payload
	return &s, nil
}

// shardHasher accumulates SHA-256 over a share's header and frames.
type shardHasher struct{ h hash.Hash }

func (h *shardHasher) init(header []byte) {
	h.h = sha256.New()
	h.h.Write(header)
}

func (h *shardHasher) write(p []byte) { h.h.Write(p) }

func (h *shardHasher) sum() [32]byte {
	var out [32]byte
	h.h.Sum(out[:0])
	return out
}
