package chain

import (
	"encoding/binary"
	"fmt"
)

// encoder appends fixed-width big-endian fields. Lengths are fixed-width
// too, so every value has exactly one encoding.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) hash(h Hash)  { e.b = append(e.b, h[:]...) }
func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }

// bytes16 writes a uint16 length prefix and the bytes.
func (e *encoder) bytes16(p []byte) { e.u16(uint16(len(p))); e.raw(p) }

// bytes32 writes a uint32 length prefix and the bytes.
func (e *encoder) bytes32(p []byte) { e.u32(uint32(len(p))); e.raw(p) }

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

func (d *decoder) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
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

func (d *decoder) hash(what string) Hash {
	var h Hash
	copy(h[:], d.take(len(h), what))
	return h
}

// bytes16 reads a uint16-length-prefixed field of at most max bytes. The
// result is a copy, so it never aliases the input buffer.
func (d *decoder) bytes16(what string, max int) []byte {
	n := int(d.u16(what + " length"))
	return d.limited(n, what, max)
}

// bytes32 reads a uint32-length-prefixed field of at most max bytes.
func (d *decoder) bytes32(what string, max int) []byte {
	n := d.u32(what + " length")
	if uint64(n) > uint64(max) {
		d.fail(fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, n, max))
		return nil
	}
	return d.limited(int(n), what, max)
}

func (d *decoder) limited(n int, what string, max int) []byte {
	if d.err != nil {
		return nil
	}
	if n > max {
		d.fail(fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, n, max))
		return nil
	}
	p := d.take(n, what)
	if p == nil {
		return nil
	}
	out := make([]byte, n)
	copy(out, p)
	return out
}

// finish reports the sticky error, or ErrTrailingBytes if input is left.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d after the value", ErrTrailingBytes, len(d.b)-d.off)
	}
	return nil
}
