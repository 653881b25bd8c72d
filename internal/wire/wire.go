// Package wire is the fixed-width, big-endian binary encoding that the
// ledger's canonical formats share (chain, shard, execute, election): an
// Encoder that appends fields and length-prefixed byte strings, and a
// Decoder whose first error sticks, so a parser checks once at the end.
// Each package passes its own named errors, so callers keep matching them
// with errors.Is.
package wire

import (
	"encoding/binary"
	"fmt"
)

// Errors are the caller's named errors for the three ways input is bad.
type Errors struct {
	Truncated, TooLarge, Trailing error
}

// Encoder appends fields to B.
type Encoder struct{ B []byte }

func (e *Encoder) U8(v uint8)   { e.B = append(e.B, v) }
func (e *Encoder) U16(v uint16) { e.B = binary.BigEndian.AppendUint16(e.B, v) }
func (e *Encoder) U32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }
func (e *Encoder) U64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }
func (e *Encoder) Raw(p []byte) { e.B = append(e.B, p...) }

// Bytes8, Bytes16 and Bytes32 write a length prefix of that width and p.
func (e *Encoder) Bytes8(p []byte)  { e.U8(uint8(len(p))); e.Raw(p) }
func (e *Encoder) Bytes16(p []byte) { e.U16(uint16(len(p))); e.Raw(p) }
func (e *Encoder) Bytes32(p []byte) { e.U32(uint32(len(p))); e.Raw(p) }

// Decoder reads what Encoder wrote. After the first error every read
// returns a zero value and Finish reports that error.
type Decoder struct {
	b    []byte
	off  int
	err  error
	errs Errors
}

// NewDecoder reads b, reporting problems with errs.
func NewDecoder(b []byte, errs Errors) *Decoder { return &Decoder{b: b, errs: errs} }

// Fail records err unless an error is already recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Err is the first error so far.
func (d *Decoder) Err() error { return d.err }

// Left is how many bytes remain.
func (d *Decoder) Left() int { return len(d.b) - d.off }

// Take returns the next n bytes (aliasing the input).
func (d *Decoder) Take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.Fail(fmt.Errorf("%w: %s needs %d bytes, %d left", d.errs.Truncated, what, n, len(d.b)-d.off))
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *Decoder) U8(what string) uint8 {
	if p := d.Take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *Decoder) U16(what string) uint16 {
	if p := d.Take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *Decoder) U32(what string) uint32 {
	if p := d.Take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *Decoder) U64(what string) uint64 {
	if p := d.Take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Fixed copies the next len(dst) bytes into dst.
func (d *Decoder) Fixed(dst []byte, what string) { copy(dst, d.Take(len(dst), what)) }

// Bytes8, Bytes16 and Bytes32 read a length prefix of that width and a
// copy of that many bytes, refusing more than max before reading them.
func (d *Decoder) Bytes8(what string, max int) []byte {
	return d.limited(int64(d.U8(what+" length")), what, max)
}

func (d *Decoder) Bytes16(what string, max int) []byte {
	return d.limited(int64(d.U16(what+" length")), what, max)
}

func (d *Decoder) Bytes32(what string, max int) []byte {
	return d.limited(int64(d.U32(what+" length")), what, max)
}

func (d *Decoder) limited(n int64, what string, max int) []byte {
	if d.err != nil {
		return nil
	}
	if n > int64(max) {
		d.Fail(fmt.Errorf("%w: %s is %d bytes, limit %d", d.errs.TooLarge, what, n, max))
		return nil
	}
	p := d.Take(int(n), what)
	if p == nil {
		return nil
	}
	return append(make([]byte, 0, n), p...)
}

// Finish reports the sticky error, or Trailing if input remains.
func (d *Decoder) Finish() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d after the value", d.errs.Trailing, len(d.b)-d.off)
	}
	return nil
}
