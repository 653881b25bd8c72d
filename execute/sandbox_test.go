package execute

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"io"
	"math"
	"testing"

	"qledger/function"
)

func rid(b byte) [32]byte {
	var r [32]byte
	r[0] = b
	return r
}

func TestVirtualClock(t *testing.T) {
	a, again, b := newVirtualClock(rid(1)), newVirtualClock(rid(1)), newVirtualClock(rid(2))
	if *a != *again {
		t.Fatal("same request, different clocks")
	}
	if a.wallBase == b.wallBase || a.monoBase == b.monoBase {
		t.Fatal("different requests, same clock")
	}
	for _, c := range []*virtualClock{a, b} {
		if c.wallBase < wallEpoch || c.wallBase >= wallEpoch+wallSpan || c.monoBase < 0 || c.monoBase >= monoSpan {
			t.Fatalf("bases out of range: %+v", c)
		}
	}
	s1, n1 := a.walltime()
	m1 := a.nanotime()
	a.nanosleep(5e9)
	s2, n2 := a.walltime()
	m2 := a.nanotime()
	if d := (s2-s1)*1e9 + int64(n2-n1); d != 5e9+2*clockTick {
		t.Fatalf("wall clock advanced %d ns", d)
	}
	if m2-m1 != 5e9+2*clockTick {
		t.Fatalf("monotonic clock advanced %d ns", m2-m1)
	}
	a.nanosleep(-1) // ignored
	// Huge sleeps saturate instead of overflowing.
	last := a.nanotime()
	for i := 0; i < 10; i++ {
		a.nanosleep(math.MaxInt64)
		now := a.nanotime()
		if now < last {
			t.Fatalf("monotonic clock went back: %d < %d", now, last)
		}
		last = now
		if s, _ := a.walltime(); s < 0 {
			t.Fatal("wall clock overflowed")
		}
	}
}

func TestRandomSource(t *testing.T) {
	read := func(r io.Reader, n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	r1, _ := newRandom(rid(1))
	r1again, _ := newRandom(rid(1))
	r2, _ := newRandom(rid(2))
	a := read(r1, 100)
	// Chunked reads continue the same stream.
	b := append(read(r1again, 37), read(r1again, 63)...)
	if !bytes.Equal(a, b) {
		t.Fatal("same request, different random bytes")
	}
	if bytes.Equal(a, read(r2, 100)) {
		t.Fatal("different requests, same random bytes")
	}
	// It is AES-256-CTR, zero IV, under SHA-256(label || request ID).
	id := rid(1)
	key := sha256.Sum256(append([]byte(labelRandom), id[:]...))
	block, _ := aes.NewCipher(key[:])
	want := make([]byte, 100)
	cipher.NewCTR(block, make([]byte, aes.BlockSize)).XORKeyStream(want, want)
	if !bytes.Equal(a, want) {
		t.Fatal("random source is not the documented keystream")
	}
}

func TestStdoutBuffer(t *testing.T) {
	calls := 0
	w := &stdoutBuffer{max: 10, onOverflow: func() { calls++ }}
	if n, err := w.Write([]byte("0123456789")); n != 10 || err != nil {
		t.Fatalf("write up to the limit: %d %v", n, err)
	}
	if n, err := w.Write([]byte("x")); n != 0 || err == nil || !w.overflowed {
		t.Fatalf("write over the limit: %d %v", n, err)
	}
	if _, err := w.Write(nil); err == nil {
		t.Fatal("write after overflow accepted")
	}
	if calls != 1 || string(w.buf) != "0123456789" {
		t.Fatalf("onOverflow called %d times, buf %q", calls, w.buf)
	}
}

func TestStderrLog(t *testing.T) {
	w := &stderrLog{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
	}
	if string(w.buf) != "abcde" || !w.truncated {
		t.Fatalf("kept %q, truncated %v", w.buf, w.truncated)
	}
	f := &stderrLog{max: 100}
	f.Write([]byte("before"))
	f.freeze()
	f.Write([]byte("after"))
	if string(f.buf) != "before" {
		t.Fatalf("frozen log kept %q", f.buf)
	}
}

// A linear memory's array goes back to the pool after its call, and the
// next instance that gets it sees only zeros, up to its full capacity
// (growth within the capacity reslices without allocating).
func TestRecycledMemoryIsZero(t *testing.T) {
	const size = 2 * function.PageSize
	reused := 0
	var last *byte // the previous call's array
	for range 20 {
		g := &memoryGuard{limit: 4 * function.PageSize, onRefuse: func() {}}
		m := g.Allocate(size, 4*function.PageSize).(*guardedMemory)
		buf := m.Reallocate(function.PageSize)
		first := &buf[:1][0]
		full := buf[:cap(buf)]
		for i := range full {
			if full[i] != 0 {
				t.Fatalf("byte %d of %d is %d in a fresh memory", i, len(full), full[i])
			}
			full[i] = 0xff
		}
		if cap(buf) >= size && first == last {
			reused++
		}
		last = first
		g.recycle()
		if m.buf != nil {
			t.Fatal("recycle left the memory its array")
		}
	}
	if reused == 0 {
		t.Fatal("no array was reused in 20 calls")
	}
}

func TestMemoryGuard(t *testing.T) {
	calls := 0
	g := &memoryGuard{limit: 4 * function.PageSize, onRefuse: func() { calls++ }}
	m := g.Allocate(function.PageSize, 16*function.PageSize)
	buf := m.Reallocate(function.PageSize)
	if len(buf) != function.PageSize {
		t.Fatalf("initial %d bytes", len(buf))
	}
	buf[0], buf[function.PageSize-1] = 1, 2
	buf = m.Reallocate(3 * function.PageSize)
	if len(buf) != 3*function.PageSize || buf[0] != 1 || buf[function.PageSize-1] != 2 || buf[function.PageSize] != 0 {
		t.Fatal("growth lost or dirtied content")
	}
	if got := m.Reallocate(4 * function.PageSize); len(got) != 4*function.PageSize || g.refused {
		t.Fatal("growth up to the limit refused")
	}
	if got := m.Reallocate(5 * function.PageSize); got != nil || !g.refused || g.asked != 5*function.PageSize {
		t.Fatalf("growth over the limit: %d bytes, refused %v", len(got), g.refused)
	}
	m.Reallocate(6 * function.PageSize)
	if calls != 1 {
		t.Fatalf("onRefuse called %d times", calls)
	}
	m.Free()

	// An initial size over the limit is flagged but still allocated, since
	// wazero cannot handle a refusal there.
	g2 := &memoryGuard{limit: function.PageSize, onRefuse: func() {}}
	if b := g2.Allocate(2*function.PageSize, 2*function.PageSize).Reallocate(2 * function.PageSize); len(b) != 2*function.PageSize || !g2.refused {
		t.Fatalf("initial over the limit: %d bytes, refused %v", len(b), g2.refused)
	}
}
