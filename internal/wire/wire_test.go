package wire

import (
	"bytes"
	"errors"
	"testing"
)

var (
	errShort = errors.New("short")
	errBig   = errors.New("big")
	errTail  = errors.New("tail")
	errs     = Errors{Truncated: errShort, TooLarge: errBig, Trailing: errTail}
)

func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.U8(1)
	e.U16(2)
	e.U32(3)
	e.U64(4)
	e.Bytes8([]byte("a"))
	e.Bytes16([]byte("bc"))
	e.Bytes32([]byte("def"))
	e.Raw([]byte{9, 9})
	d := NewDecoder(e.B, errs)
	if d.U8("") != 1 || d.U16("") != 2 || d.U32("") != 3 || d.U64("") != 4 {
		t.Fatal("integers")
	}
	if string(d.Bytes8("", 1)) != "a" || string(d.Bytes16("", 2)) != "bc" || string(d.Bytes32("", 3)) != "def" {
		t.Fatal("byte strings")
	}
	var two [2]byte
	d.Fixed(two[:], "")
	if err := d.Finish(); err != nil || two != [2]byte{9, 9} {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	var e Encoder
	e.Bytes16([]byte("hello"))
	if err := NewDecoder(e.B[:3], errs).Finish(); !errors.Is(err, errTail) {
		t.Fatal("unread input is trailing")
	}
	d := NewDecoder(e.B[:3], errs)
	d.Bytes16("x", 10)
	if !errors.Is(d.Finish(), errShort) {
		t.Fatal("truncation")
	}
	d = NewDecoder(e.B, errs)
	d.Bytes16("x", 4)
	if !errors.Is(d.Finish(), errBig) {
		t.Fatal("limit")
	}
	d = NewDecoder(append(bytes.Clone(e.B), 0), errs)
	d.Bytes16("x", 10)
	if !errors.Is(d.Finish(), errTail) {
		t.Fatal("trailing")
	}
	// A copy, not an alias.
	in := bytes.Clone(e.B)
	d = NewDecoder(in, errs)
	out := d.Bytes16("x", 10)
	in[2] = 'X'
	if string(out) != "hello" {
		t.Fatal("aliased")
	}
}
