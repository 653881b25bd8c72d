package election

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

const recordVersion = 1

// MarshalBinary returns the canonical encoding of the record:
//
//	u8  version (1)
//	u8  len(RequestID) || RequestID
//	u8  len(KeyID)     || KeyID
//	[32] KeyCommitment
//	u16 number of candidates (big-endian)
//	per candidate, in ranking order:
//	    u8 len(NodeID) || NodeID, [32] H, [32] Stake, [32] Nonce
//
// It refuses fields that do not fit (ErrTooLarge) but does not otherwise
// verify the record; see Verify.
func (r Record) MarshalBinary() ([]byte, error) {
	switch {
	case len(r.RequestID) > MaxIDLen:
		return nil, fmt.Errorf("%w: request ID of %d bytes", ErrTooLarge, len(r.RequestID))
	case len(r.KeyID) > MaxIDLen:
		return nil, fmt.Errorf("%w: key ID of %d bytes", ErrTooLarge, len(r.KeyID))
	case len(r.Candidates) > MaxCandidates:
		return nil, fmt.Errorf("%w: %d candidates", ErrTooLarge, len(r.Candidates))
	}
	size := 1 + 1 + len(r.RequestID) + 1 + len(r.KeyID) + Size + 2
	for _, c := range r.Candidates {
		if len(c.NodeID) > MaxIDLen {
			return nil, fmt.Errorf("%w: node ID of %d bytes", ErrTooLarge, len(c.NodeID))
		}
		size += 1 + len(c.NodeID) + 3*Size
	}
	b := make([]byte, 0, size)
	b = append(b, recordVersion)
	b = append(append(b, byte(len(r.RequestID))), r.RequestID...)
	b = append(append(b, byte(len(r.KeyID))), r.KeyID...)
	b = append(b, r.KeyCommitment[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Candidates)))
	for _, c := range r.Candidates {
		b = append(append(b, byte(len(c.NodeID))), c.NodeID...)
		b = append(b, c.H[:]...)
		b = append(b, c.Stake[:]...)
		b = append(b, c.Nonce[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It rejects unknown
// versions, truncated input, more than MaxCandidates candidates and
// trailing bytes; it does not verify the record (call Verify). The result
// does not alias b.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := &decoder{b: b}
	if v := d.u8("version"); d.err == nil && v != recordVersion {
		return fmt.Errorf("%w: record version %d", ErrUnknownVersion, v)
	}
	var out Record
	out.RequestID = bytes.Clone(d.bytes8("request ID"))
	out.KeyID = string(d.bytes8("key ID"))
	copy(out.KeyCommitment[:], d.take(Size, "key commitment"))
	n := int(d.u16("candidate count"))
	if d.err == nil && n > MaxCandidates {
		return fmt.Errorf("%w: %d candidates (at most %d)", ErrTooLarge, n, MaxCandidates)
	}
	if d.err == nil && n > 0 {
		out.Candidates = make([]Candidate, 0, min(n, len(b)/(1+3*Size)+1))
	}
	for i := 0; i < n && d.err == nil; i++ {
		var c Candidate
		c.NodeID = string(d.bytes8("node ID"))
		copy(c.H[:], d.take(Size, "h"))
		copy(c.Stake[:], d.take(Size, "stake"))
		copy(c.Nonce[:], d.take(Size, "nonce"))
		out.Candidates = append(out.Candidates, c)
	}
	if d.err != nil {
		return fmt.Errorf("election: decode record: %w", d.err)
	}
	if d.off != len(b) {
		return fmt.Errorf("election: decode record: %w: %d after the record", ErrTrailingBytes, len(b)-d.off)
	}
	*r = out
	return nil
}

// decoder reads big-endian fields; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < n {
		d.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) bytes8(what string) []byte {
	n := int(d.u8(what + " length"))
	return d.take(n, what)
}
