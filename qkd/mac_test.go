package qkd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"
)

var p127 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 127), big.NewInt(1))

func toBig(a u128) *big.Int {
	return new(big.Int).Or(new(big.Int).Lsh(new(big.Int).SetUint64(a.hi), 64), new(big.Int).SetUint64(a.lo))
}

func TestMulModAgainstBig(t *testing.T) {
	r := mrand.New(mrand.NewPCG(5, 6))
	edge := []u128{{0, 0}, {0, 1}, {mask63, ^uint64(0) - 1}, {mask63, 0}, {0, ^uint64(0)}, {1 << 62, 0}}
	vals := append([]u128(nil), edge...)
	for i := 0; i < 200; i++ {
		vals = append(vals, u128{r.Uint64() & mask63, r.Uint64()}.reduce())
	}
	for _, a := range vals {
		for _, b := range vals[:20] {
			want := new(big.Int).Mod(new(big.Int).Mul(toBig(a), toBig(b)), p127)
			if got := toBig(mulMod(a, b)); got.Cmp(want) != 0 {
				t.Fatalf("mulMod(%v,%v) = %v, want %v", a, b, got, want)
			}
			want = new(big.Int).Mod(new(big.Int).Add(toBig(a), toBig(b)), p127)
			if got := toBig(addMod(a, b)); got.Cmp(want) != 0 {
				t.Fatalf("addMod(%v,%v) = %v, want %v", a, b, got, want)
			}
		}
	}
}

func TestPolyHashAgainstBig(t *testing.T) {
	r := mrand.New(mrand.NewPCG(8, 9))
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(r.Uint64())
	}
	k := toBig(u128FromBytes(key))
	for _, n := range []int{0, 1, 14, 15, 16, 30, 31, 100} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(r.Uint64())
		}
		h := new(big.Int)
		for off := 0; off < n; off += 15 {
			c := msg[off:min(off+15, n)]
			m := new(big.Int).SetBytes(c)
			m.Or(m, new(big.Int).Lsh(big.NewInt(1), uint(8*len(c))))
			h.Add(h, m).Mul(h, k).Mod(h, p127)
		}
		if got := toBig(polyHash(u128FromBytes(key), msg)); got.Cmp(h) != 0 {
			t.Fatalf("len %d: %v, want %v", n, got, h)
		}
	}
	// Prefix-free: a trailing zero byte changes the hash.
	if polyHash(u128FromBytes(key), []byte{1}) == polyHash(u128FromBytes(key), []byte{1, 0}) {
		t.Fatal("hash ignores a trailing zero byte")
	}
}

func TestAuthStorePads(t *testing.T) {
	s, err := NewAuthStore(bytes.Repeat([]byte{7}, 16+4*16))
	if err != nil {
		t.Fatal(err)
	}
	if s.Available() != 64 {
		t.Fatalf("available %d", s.Available())
	}
	if _, err := s.take(1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.take(0); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("reused pad 0 (skipped): %v", err)
	}
	if _, err := s.take(1); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("reused pad 1: %v", err)
	}
	if _, err := s.take(4); !errors.Is(err, ErrAuthKeyExhausted) {
		t.Fatalf("pad past the end: %v", err)
	}
	if s.Available() != 32 || s.Consumed() != 32 {
		t.Fatalf("available %d consumed %d", s.Available(), s.Consumed())
	}
	s.Refill(make([]byte, 24)) // one and a half pads
	if s.Available() != 48 {
		t.Fatalf("after refill: %d", s.Available())
	}
	if _, err := NewAuthStore(make([]byte, 31)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal("short bootstrap accepted")
	}
}

func TestSealOpen(t *testing.T) {
	boot := bytes.Repeat([]byte{1, 2, 3, 4}, 40)
	a, _ := NewAuthStore(boot)
	b, _ := NewAuthStore(boot)
	m := &Message{Type: MsgAbort, Block: 9, Offset: 2, Length: 1, Reason: "test"}
	framed, err := a.seal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.open(framed)
	if err != nil || got.Reason != "test" || got.Block != 9 {
		t.Fatalf("open: %v %+v", err, got)
	}
	if _, err := b.open(framed); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("replay opened: %v", err)
	}
	m.Offset = 3
	framed, _ = a.seal(m)
	for i := range framed {
		c, _ := NewAuthStore(boot)
		c.SkipTo(3)
		bad := flipByte(framed, i)
		if _, err := c.open(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

// TestWeakHashKeyRefused: hash keys that are 0 or 1 modulo 2^127-1 (after
// the top bit is dropped) make tags forgeable, so a bootstrap key with one
// is refused; 2 and a patterned key are fine.
func TestWeakHashKeyRefused(t *testing.T) {
	pads := bytes.Repeat([]byte{0x5a}, 32)
	key := func(hi, lo uint64) []byte {
		b := binary.BigEndian.AppendUint64(nil, hi)
		return append(binary.BigEndian.AppendUint64(b, lo), pads...)
	}
	p := key(1<<63-1, ^uint64(0)) // 2^127-1 itself
	for name, boot := range map[string][]byte{
		"zero":            key(0, 0),
		"top bit only":    key(1<<63, 0),
		"p":               p,
		"all ones":        key(^uint64(0), ^uint64(0)),
		"one":             key(0, 1),
		"top bit and one": key(1<<63, 1),
	} {
		if _, err := NewAuthStore(boot); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: weak hash key accepted: %v", name, err)
		}
	}
	for name, boot := range map[string][]byte{"two": key(0, 2), "pattern": bytes.Repeat([]byte{0x5a, 0xc3, 0x17}, 16)} {
		if _, err := NewAuthStore(boot); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Why: under the zero key two different messages share a tag.
	m1, m2 := []byte("pay alice"), []byte("pay mallory")
	if !bytes.Equal(macTag(make([]byte, 16), pads[:16], m1), macTag(make([]byte, 16), pads[:16], m2)) {
		t.Fatal("the zero key should make the tag independent of the message")
	}
}
