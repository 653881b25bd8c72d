package qkd

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// MsgType identifies a classical post-processing message.
type MsgType uint8

// Message types in protocol order. Bob (the receiver of the qubits) sends
// requests; Alice answers each with exactly one reply.
const (
	MsgDetect       MsgType = iota + 1 // Bob: pulse count, detection mask, his bases where detected
	MsgBases                           // Alice: her bases where Bob detected
	MsgSample                          // Bob: sample mask over the sifted key, his sample bits
	MsgSampleReply                     // Alice: her sample bits
	MsgCascadePass                     // Bob: start Cascade pass (index, block size, shuffle seed)
	MsgCascadeQuery                    // Bob: ranges whose parity he needs
	MsgParities                        // Alice: parities of the pass's blocks or of the queried ranges
	MsgVerify                          // Bob: leak count, hash seed, hash of his reconciled key
	MsgVerifyOK                        // Alice: hashes match
	MsgAmplify                         // Bob: output length, Toeplitz seed, key IDs
	MsgDone                            // Alice: key computed
	MsgAbort                           // either: reason (and, for resync, the sender's pad offset)
	msgTypeEnd
)

var msgNames = [...]string{"", "detect", "bases", "sample", "sample-reply", "cascade-pass",
	"cascade-query", "parities", "verify", "verify-ok", "amplify", "done", "abort"}

func (t MsgType) String() string {
	if t == 0 || t >= msgTypeEnd {
		return fmt.Sprintf("msg(%d)", uint8(t))
	}
	return msgNames[t]
}

// Range is a half-open interval [Start, End) of positions in the shuffled
// order of Cascade pass Pass.
type Range struct {
	Pass       int
	Start, End int
}

// Message is one classical message. Which fields are used depends on Type
// (see the table msgFields); unused fields are zero.
type Message struct {
	Type MsgType
	// Block numbers the key block on the link; Offset is the index of the
	// one-time pad that authenticates this message.
	Block  uint64
	Offset uint64

	Length    int     // Detect: pulses; Verify: leaked bits; Amplify: output bits
	A, B      *Bits   // bit-string payloads
	Pass      int     // CascadePass
	BlockSize int     // CascadePass
	Seed      []byte  // CascadePass: 32-byte shuffle seed
	Ranges    []Range // CascadeQuery
	IDs       [][16]byte
	Reason    string // Abort
}

type field uint8

const (
	fLength field = iota
	fA
	fB
	fPass
	fBlockSize
	fSeed
	fRanges
	fIDs
	fReason
)

// msgFields lists, per type, the payload fields in wire order.
var msgFields = [msgTypeEnd][]field{
	MsgDetect:       {fLength, fA, fB},
	MsgBases:        {fA},
	MsgSample:       {fA, fB},
	MsgSampleReply:  {fA},
	MsgCascadePass:  {fPass, fBlockSize, fSeed},
	MsgCascadeQuery: {fRanges},
	MsgParities:     {fA},
	MsgVerify:       {fLength, fA, fB},
	MsgVerifyOK:     {},
	MsgAmplify:      {fLength, fA, fIDs},
	MsgDone:         {},
	MsgAbort:        {fLength, fReason},
}

const (
	msgMagic0, msgMagic1 = 'Q', 'K'
	msgVersion           = 1
	msgHeaderLen         = 4 + 8 + 8
	maxReasonLen         = 1024
	maxPass              = 63
	maxBitsLen           = 1 << 40
)

// appendBody encodes m without its tag.
func (m *Message) appendBody(b []byte) ([]byte, error) {
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, m.Type)
	}
	b = append(b, msgMagic0, msgMagic1, msgVersion, byte(m.Type))
	b = binary.BigEndian.AppendUint64(b, m.Block)
	b = binary.BigEndian.AppendUint64(b, m.Offset)
	for _, f := range msgFields[m.Type] {
		var err error
		if b, err = m.appendField(b, f); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (m *Message) appendField(b []byte, f field) ([]byte, error) {
	switch f {
	case fLength:
		return appendInt(b, m.Length)
	case fA:
		return appendBits(b, m.A), nil
	case fB:
		return appendBits(b, m.B), nil
	case fPass:
		return appendInt(b, m.Pass)
	case fBlockSize:
		return appendInt(b, m.BlockSize)
	case fSeed:
		if len(m.Seed) != 32 {
			return nil, fmt.Errorf("%w: seed of %d bytes", ErrMalformed, len(m.Seed))
		}
		return append(b, m.Seed...), nil
	case fRanges:
		b = binary.AppendUvarint(b, uint64(len(m.Ranges)))
		for _, r := range m.Ranges {
			if r.Pass < 0 || r.Pass > maxPass || r.Start < 0 || r.End < r.Start {
				return nil, fmt.Errorf("%w: range %+v", ErrMalformed, r)
			}
			b = append(b, byte(r.Pass))
			b = binary.AppendUvarint(b, uint64(r.Start))
			b = binary.AppendUvarint(b, uint64(r.End-r.Start))
		}
		return b, nil
	case fIDs:
		b = binary.AppendUvarint(b, uint64(len(m.IDs)))
		for _, id := range m.IDs {
			b = append(b, id[:]...)
		}
		return b, nil
	case fReason:
		r := m.Reason
		if len(r) > maxReasonLen {
			r = r[:maxReasonLen]
		}
		b = binary.AppendUvarint(b, uint64(len(r)))
		return append(b, r...), nil
	}
	return nil, fmt.Errorf("%w: field %d", ErrMalformed, f)
}

func appendInt(b []byte, v int) ([]byte, error) {
	if v < 0 {
		return nil, fmt.Errorf("%w: negative %d", ErrMalformed, v)
	}
	return binary.AppendUvarint(b, uint64(v)), nil
}

func appendBits(b []byte, x *Bits) []byte {
	n := x.Len()
	b = binary.AppendUvarint(b, uint64(n))
	nb := (n + 7) / 8
	for i := 0; i < nb; i++ {
		b = append(b, byte(x.w[i/8]>>(8*(i%8))))
	}
	return b
}

// DecodeMessage parses a message body (without the authentication tag). It
// never panics and never allocates much more than len(body): every length is
// checked against the bytes that remain.
func DecodeMessage(body []byte) (*Message, error) {
	if len(body) < msgHeaderLen || body[0] != msgMagic0 || body[1] != msgMagic1 {
		return nil, fmt.Errorf("%w: bad header", ErrMalformed)
	}
	if body[2] != msgVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, body[2])
	}
	t := MsgType(body[3])
	if t == 0 || t >= msgTypeEnd {
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, body[3])
	}
	m := &Message{Type: t, Block: binary.BigEndian.Uint64(body[4:]), Offset: binary.BigEndian.Uint64(body[12:])}
	d := decoder{b: body[msgHeaderLen:]}
	for _, f := range msgFields[t] {
		d.field(m, f)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, t, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, t, len(d.b))
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, a...)
	}
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintLen(v) {
		d.fail("bad or non-minimal varint")
		return 0
	}
	if v > max {
		d.fail("value %d above %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("need %d bytes, have %d", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) bits() *Bits {
	n := d.uvarint(maxBitsLen)
	if d.err != nil {
		return nil
	}
	if (n+7)/8 > uint64(len(d.b)) {
		d.fail("bit string of %d bits, %d bytes left", n, len(d.b))
		return nil
	}
	p := d.bytes(int((n + 7) / 8))
	x := NewBits(int(n))
	for i, c := range p {
		x.w[i/8] |= uint64(c) << (8 * (i % 8))
	}
	if r := n % 8; r != 0 && p[len(p)-1]>>r != 0 {
		d.fail("non-zero padding bits")
		return nil
	}
	return x
}

func (d *decoder) field(m *Message, f field) {
	const maxInt = 1 << 40
	switch f {
	case fLength:
		m.Length = int(d.uvarint(maxInt))
	case fA:
		m.A = d.bits()
	case fB:
		m.B = d.bits()
	case fPass:
		m.Pass = int(d.uvarint(maxPass))
	case fBlockSize:
		m.BlockSize = int(d.uvarint(maxInt))
	case fSeed:
		if p := d.bytes(32); p != nil {
			m.Seed = append([]byte(nil), p...)
		}
	case fRanges:
		n := d.uvarint(uint64(len(d.b) / 3))
		m.Ranges = make([]Range, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			p := d.bytes(1)
			s := d.uvarint(maxInt)
			l := d.uvarint(maxInt)
			if d.err == nil {
				if p[0] > maxPass {
					d.fail("pass %d", p[0])
				}
				m.Ranges = append(m.Ranges, Range{Pass: int(p[0]), Start: int(s), End: int(s + l)})
			}
		}
	case fIDs:
		n := d.uvarint(uint64(len(d.b) / 16))
		m.IDs = make([][16]byte, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			if p := d.bytes(16); p != nil {
				m.IDs = append(m.IDs, [16]byte(p))
			}
		}
	case fReason:
		n := d.uvarint(maxReasonLen)
		if p := d.bytes(int(n)); p != nil {
			if !utf8.Valid(p) {
				d.fail("reason is not UTF-8")
			}
			m.Reason = string(p)
		}
	}
}

// MarshalBody returns the wire encoding of m without a tag.
func (m *Message) MarshalBody() ([]byte, error) { return m.appendBody(nil) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
