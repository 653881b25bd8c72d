package execute

import (
	"encoding/binary"
	"fmt"
)

// encoder appends big-endian fields and length-prefixed byte strings.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)      { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32)    { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64)    { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) raw(p []byte)    { e.b = append(e.b, p...) }
func (e *encoder) bytes8(p []byte) { e.u8(uint8(len(p))); e.raw(p) }

// decoder reads what encoder wrote. The first error sticks; later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail(fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, n, len(d.b)-d.off))
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

func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// bytes8 reads a u8 length prefix and that many bytes, refusing more than max.
func (d *decoder) bytes8(what string, max int) []byte {
	n := int(d.u8(what + " length"))
	if d.err == nil && n > max {
		d.fail(fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrTooLarge, what, n, max))
	}
	return d.take(n, what)
}

// bytes32 reads a u32 length prefix and that many bytes, refusing more than
// max before looking at the bytes.
func (d *decoder) bytes32(what string, max int) []byte {
	n := d.u32(what + " length")
	if d.err == nil && uint64(n) > uint64(max) {
		d.fail(fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrTooLarge, what, n, max))
	}
	return d.take(int(n), what)
}

// finish reports the sticky error, or ErrTrailingBytes if input remains.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d after the value", ErrTrailingBytes, len(d.b)-d.off)
	}
	return nil
}
