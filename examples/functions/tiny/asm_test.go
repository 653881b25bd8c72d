package tiny

import (
	"bytes"
	"math"
	"testing"
)

func TestLEB128(t *testing.T) {
	cases := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0}}, {127, []byte{0x7f}}, {128, []byte{0x80, 0x01}}, {624485, []byte{0xe5, 0x8e, 0x26}},
	}
	for _, c := range cases {
		if got := uleb(c.v); !bytes.Equal(got, c.want) {
			t.Errorf("uleb(%d) = %x, want %x", c.v, got, c.want)
		}
	}
	scases := []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0}}, {-1, []byte{0x7f}}, {63, []byte{0x3f}}, {64, []byte{0xc0, 0x00}},
		{-64, []byte{0x40}}, {-65, []byte{0xbf, 0x7f}}, {-123456, []byte{0xc0, 0xbb, 0x78}},
		{math.MinInt32, []byte{0x80, 0x80, 0x80, 0x80, 0x78}},
	}
	for _, c := range scases {
		if got := sleb(c.v); !bytes.Equal(got, c.want) {
			t.Errorf("sleb(%d) = %x, want %x", c.v, got, c.want)
		}
	}
}

// The smallest module this encoder emits: one exported function, nothing
// else. The expected bytes are the WebAssembly 1.0 binary format, section
// by section.
func TestEncodeMinimal(t *testing.T) {
	b := &builder{}
	b.function("_start", nil, nil, nil)
	want := []byte{
		0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00, // magic, version
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
		0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export "_start" func 0
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: one body, no locals, end
	}
	if got := b.encode(); !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}
