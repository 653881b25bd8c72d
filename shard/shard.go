// Package shard defines the shard record: how one segment of one share of
// a confidentially shared data item is stored as a transaction on its
// group's chain (SSDSM's "shard block"). Share i of an item lives in group
// i; a share larger than MaxSegmentBytes is stored in several segments,
// one transaction each.
//
// The record carries what a reader needs to find, check and recover the
// item: the data ID, share index, threshold and share count, scheme,
// uploader, description, digest of the whole item, the reader list, and
// the hash of the whole encoded share. Like every chain encoding it is
// canonical and versioned; decoding rejects anything malformed.
//
// The package is pure (no raft, no network), so the state machine that
// indexes records and the client that reads them share it.
package shard

import (
	"errors"
	"fmt"
	"regexp"

	"qledger/internal/wire"
)

// Version is the record encoding version.
const Version uint8 = 1

// Limits.
const (
	MaxDataIDLen      = 64
	MaxDescriptionLen = 256
	MaxDigestLen      = 64
	MaxReaders        = 64
	MaxReaderLen      = 128
	MaxUploaderLen    = 256
	// MaxSegmentBytes keeps one segment, base64-encoded in JSON, under the
	// API's request body limit and one transaction under the payload limit.
	MaxSegmentBytes = 768 << 10
	MaxSegments     = 1 << 20
)

// Errors.
var (
	ErrMalformed = errors.New("shard: malformed record")
	ErrInvalid   = errors.New("shard: invalid record")
)

var dataIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidDataID reports whether id may name a data item.
func ValidDataID(id string) error {
	if len(id) == 0 || len(id) > MaxDataIDLen || !dataIDPattern.MatchString(id) {
		return fmt.Errorf("%w: data ID must be 1..%d characters of A-Z a-z 0-9 . _ -", ErrInvalid, MaxDataIDLen)
	}
	return nil
}

// Record is one segment of one share.
type Record struct {
	DataID string
	// Index is the share index, which is also the group that stores it.
	Index     int
	Shares    int // n
	Threshold int // t
	Scheme    string
	// Segment of Segments: this record holds bytes [Segment*MaxSegmentBytes, ...)
	// of the encoded share.
	Segment, Segments int
	// ShareSize is the length of the whole encoded share.
	ShareSize int64
	// ShareHash is the share's own hash (sharing.Share.Hash).
	ShareHash [32]byte
	// Uploader is who stored it (node or client identity, or address).
	Uploader    string
	Description string
	// Digest identifies the whole item: SHA-256 in paper mode, the keyed
	// split digest in dispersal mode.
	Digest []byte
	// Readers may fetch the share; empty means anyone.
	Readers []string
	// Bytes is this segment of the encoded share.
	Bytes []byte
}

// Validate checks every field against its limits.
func (r *Record) Validate() error {
	if err := ValidDataID(r.DataID); err != nil {
		return err
	}
	switch {
	case r.Shares < 1 || r.Shares > 255:
		return fmt.Errorf("%w: shares %d (1..255)", ErrInvalid, r.Shares)
	case r.Threshold < 1 || r.Threshold > r.Shares:
		return fmt.Errorf("%w: threshold %d of %d shares", ErrInvalid, r.Threshold, r.Shares)
	case r.Index < 0 || r.Index >= r.Shares:
		return fmt.Errorf("%w: share index %d of %d", ErrInvalid, r.Index, r.Shares)
	case r.Scheme == "" || len(r.Scheme) > 32:
		return fmt.Errorf("%w: scheme %q", ErrInvalid, r.Scheme)
	case r.Segments < 1 || r.Segments > MaxSegments || r.Segment < 0 || r.Segment >= r.Segments:
		return fmt.Errorf("%w: segment %d of %d", ErrInvalid, r.Segment, r.Segments)
	case r.ShareSize < 1 || r.ShareSize > int64(r.Segments)*MaxSegmentBytes:
		return fmt.Errorf("%w: share size %d for %d segments", ErrInvalid, r.ShareSize, r.Segments)
	case len(r.Bytes) == 0 || len(r.Bytes) > MaxSegmentBytes:
		return fmt.Errorf("%w: segment of %d bytes (1..%d)", ErrInvalid, len(r.Bytes), MaxSegmentBytes)
	case r.Segment < r.Segments-1 && len(r.Bytes) != MaxSegmentBytes:
		return fmt.Errorf("%w: segment %d of %d must be %d bytes", ErrInvalid, r.Segment, r.Segments, MaxSegmentBytes)
	case r.Segment == r.Segments-1 && int64(r.Segment)*MaxSegmentBytes+int64(len(r.Bytes)) != r.ShareSize:
		return fmt.Errorf("%w: last segment does not end at the share size", ErrInvalid)
	case len(r.Uploader) > MaxUploaderLen:
		return fmt.Errorf("%w: uploader longer than %d", ErrInvalid, MaxUploaderLen)
	case len(r.Description) > MaxDescriptionLen:
		return fmt.Errorf("%w: description longer than %d", ErrInvalid, MaxDescriptionLen)
	case len(r.Digest) > MaxDigestLen:
		return fmt.Errorf("%w: digest longer than %d", ErrInvalid, MaxDigestLen)
	case len(r.Readers) > MaxReaders:
		return fmt.Errorf("%w: more than %d readers", ErrInvalid, MaxReaders)
	}
	for _, rd := range r.Readers {
		if rd == "" || len(rd) > MaxReaderLen {
			return fmt.Errorf("%w: reader %q", ErrInvalid, rd)
		}
	}
	return nil
}

// CanRead reports whether caller may fetch the share.
func (r *Record) CanRead(caller string) bool {
	if len(r.Readers) == 0 {
		return true
	}
	for _, rd := range r.Readers {
		if rd == caller {
			return true
		}
	}
	return false
}

// Encode returns the canonical encoding (call Validate first).
func (r *Record) Encode() []byte {
	e := wire.Encoder{B: make([]byte, 0, 128+len(r.Bytes))}
	e.U8(Version)
	e.Bytes16([]byte(r.DataID))
	e.U16(uint16(r.Index))
	e.U16(uint16(r.Shares))
	e.U16(uint16(r.Threshold))
	e.Bytes16([]byte(r.Scheme))
	e.U32(uint32(r.Segment))
	e.U32(uint32(r.Segments))
	e.U64(uint64(r.ShareSize))
	e.Raw(r.ShareHash[:])
	e.Bytes16([]byte(r.Uploader))
	e.Bytes16([]byte(r.Description))
	e.Bytes16(r.Digest)
	e.U16(uint16(len(r.Readers)))
	for _, rd := range r.Readers {
		e.Bytes16([]byte(rd))
	}
	e.Bytes32(r.Bytes)
	return e.B
}

// Decode parses and validates a record.
func Decode(b []byte) (Record, error) {
	d := wire.NewDecoder(b, wire.Errors{Truncated: ErrMalformed, TooLarge: ErrMalformed, Trailing: ErrMalformed})
	var r Record
	if v := d.U8("version"); d.Err() == nil && v != Version {
		return r, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	r.DataID = string(d.Bytes16("data ID", MaxDataIDLen))
	r.Index = int(d.U16("index"))
	r.Shares = int(d.U16("shares"))
	r.Threshold = int(d.U16("threshold"))
	r.Scheme = string(d.Bytes16("scheme", 32))
	r.Segment = int(d.U32("segment"))
	r.Segments = int(d.U32("segments"))
	r.ShareSize = int64(d.U64("share size"))
	d.Fixed(r.ShareHash[:], "share hash")
	r.Uploader = string(d.Bytes16("uploader", MaxUploaderLen))
	r.Description = string(d.Bytes16("description", MaxDescriptionLen))
	r.Digest = d.Bytes16("digest", MaxDigestLen)
	nr := int(d.U16("readers"))
	if d.Err() == nil && nr > MaxReaders {
		return r, fmt.Errorf("%w: %d readers", ErrMalformed, nr)
	}
	for i := 0; i < nr && d.Err() == nil; i++ {
		r.Readers = append(r.Readers, string(d.Bytes16("reader", MaxReaderLen)))
	}
	r.Bytes = d.Bytes32("segment bytes", MaxSegmentBytes)
	if err := d.Finish(); err != nil {
		return Record{}, err
	}
	if len(r.Digest) == 0 {
		r.Digest = nil
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Split cuts an encoded share into records of at most MaxSegmentBytes;
// tmpl supplies every field but Segment, Segments, ShareSize and Bytes.
func Split(tmpl Record, share []byte) []Record {
	segs := (len(share) + MaxSegmentBytes - 1) / MaxSegmentBytes
	out := make([]Record, 0, segs)
	for i := 0; i < segs; i++ {
		end := min((i+1)*MaxSegmentBytes, len(share))
		r := tmpl
		r.Segment, r.Segments, r.ShareSize = i, segs, int64(len(share))
		r.Bytes = share[i*MaxSegmentBytes : end]
		out = append(out, r)
	}
	return out
}
