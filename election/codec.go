package election

import (
	"fmt"

	"qledger/internal/wire"
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
	e := wire.Encoder{B: make([]byte, 0, size)}
	e.U8(recordVersion)
	e.Bytes8(r.RequestID)
	e.Bytes8([]byte(r.KeyID))
	e.Raw(r.KeyCommitment[:])
	e.U16(uint16(len(r.Candidates)))
	for _, c := range r.Candidates {
		e.Bytes8([]byte(c.NodeID))
		e.Raw(c.H[:])
		e.Raw(c.Stake[:])
		e.Raw(c.Nonce[:])
	}
	return e.B, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It rejects unknown
// versions, truncated input, more than MaxCandidates candidates and
// trailing bytes; it does not verify the record (call Verify). The result
// does not alias b.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := wire.NewDecoder(b, wire.Errors{Truncated: ErrTruncated, TooLarge: ErrTooLarge, Trailing: ErrTrailingBytes})
	if v := d.U8("version"); d.Err() == nil && v != recordVersion {
		return fmt.Errorf("%w: record version %d", ErrUnknownVersion, v)
	}
	var out Record
	out.RequestID = d.Bytes8("request ID", MaxIDLen)
	out.KeyID = string(d.Bytes8("key ID", MaxIDLen))
	copy(out.KeyCommitment[:], d.Take(Size, "key commitment"))
	n := int(d.U16("candidate count"))
	if d.Err() == nil && n > MaxCandidates {
		return fmt.Errorf("%w: %d candidates (at most %d)", ErrTooLarge, n, MaxCandidates)
	}
	if d.Err() == nil && n > 0 {
		out.Candidates = make([]Candidate, 0, min(n, len(b)/(1+3*Size)+1))
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		var c Candidate
		c.NodeID = string(d.Bytes8("node ID", MaxIDLen))
		copy(c.H[:], d.Take(Size, "h"))
		copy(c.Stake[:], d.Take(Size, "stake"))
		copy(c.Nonce[:], d.Take(Size, "nonce"))
		out.Candidates = append(out.Candidates, c)
	}
	if d.Err() != nil {
		return fmt.Errorf("election: decode record: %w", d.Err())
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("election: decode record: %w", err)
	}
	*r = out
	return nil
}
