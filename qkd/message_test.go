package qkd

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sampleMessages() []*Message {
	b1, _ := ParseHex("deadbeef0")
	b2, _ := ParseHex("8")
	return []*Message{
		{Type: MsgDetect, Block: 1, Offset: 2, Length: 36, A: b1, B: b2},
		{Type: MsgBases, A: b1},
		{Type: MsgSample, A: b1, B: NewBits(0)},
		{Type: MsgSampleReply, A: b2},
		{Type: MsgCascadePass, Pass: 3, BlockSize: 584, Seed: make([]byte, 32)},
		{Type: MsgCascadeQuery, Ranges: []Range{{0, 0, 36}, {3, 1000, 1290}}},
		{Type: MsgParities, A: b2},
		{Type: MsgVerify, Length: 1234, A: b1, B: b2},
		{Type: MsgVerifyOK, Block: 1 << 60, Offset: 1 << 40},
		{Type: MsgAmplify, Length: 256, A: b1, IDs: [][16]byte{{1}, {2, 3}}},
		{Type: MsgDone},
		{Type: MsgAbort, Length: 1, Reason: "QBER 25% above threshold"},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := m.MarshalBody()
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if got.Ranges == nil && m.Ranges == nil || len(got.Ranges) == 0 && len(m.Ranges) == 0 {
			got.Ranges = m.Ranges
		}
		if got.IDs != nil && len(got.IDs) == 0 && m.IDs == nil {
			got.IDs = nil
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", m.Type, got, m)
		}
		// Every truncation fails cleanly.
		for i := 0; i < len(b); i++ {
			if _, err := DecodeMessage(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated to %d: %v", m.Type, i, err)
			}
		}
		if _, err := DecodeMessage(append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s with trailing byte accepted", m.Type)
		}
	}
}

func TestMessageEncodeRejects(t *testing.T) {
	for _, m := range []*Message{
		{Type: 0},
		{Type: msgTypeEnd},
		{Type: MsgCascadePass, Seed: []byte{1}},
		{Type: MsgCascadeQuery, Ranges: []Range{{Pass: 99}}},
		{Type: MsgCascadeQuery, Ranges: []Range{{Start: 5, End: 4}}},
		{Type: MsgDetect, Length: -1, A: NewBits(0), B: NewBits(0)},
	} {
		if _, err := m.MarshalBody(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v encoded: %v", m, err)
		}
	}
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	m := &Message{Type: MsgParities, A: NewBits(3)}
	b, _ := m.MarshalBody()
	b[len(b)-1] = 0x80 // padding bit set
	if _, err := DecodeMessage(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("padding bits accepted: %v", err)
	}
	// A huge declared bit length with no bytes behind it.
	b = []byte{'Q', 'K', 1, byte(MsgParities), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := DecodeMessage(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge length accepted: %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBody()
		f.Add(b)
	}
	f.Add([]byte("QK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes (canonical form).
		again, err := m.MarshalBody()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if string(again) != string(b) {
			t.Fatalf("non-canonical decode:\n in %x\nout %x", b, again)
		}
	})
}

// fuzzBootstrap is a fixed authentication key of n bytes for the fuzz
// targets. It must not be all zeros: under a zero hash key and zero pads
// every tag is zero, so the fuzzer could "forge" a frame (the
// detect-zero-tag seed of FuzzAliceHandle found this; NewAuthStore now
// refuses such keys).
func fuzzBootstrap(n int) []byte {
	return bytes.Repeat([]byte{0x3c, 0xa5, 0x96, 0x0f, 0x71}, n/5+1)[:n]
}

// FuzzAliceHandle feeds arbitrary frames to Alice: she must never panic and
// must answer garbage with an abort, never with key material.
func FuzzAliceHandle(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBody()
		f.Add(append(b, make([]byte, 16)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := testConfig("fuzz", 256)
		ar, _, _ := Simulate(cfg.Channel, cfg.Qubits, cfg.Seed)
		auth, err := NewAuthStore(fuzzBootstrap(64))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAlice(cfg, 0, ar, auth)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Handle(b)
		if err == nil {
			t.Fatal("unauthenticated frame accepted")
		}
		if res, _ := a.Result(); res.Output != nil {
			t.Fatal("key after garbage")
		}
	})
}

// FuzzAliceAuthenticated gives Alice arbitrary message bodies that carry a
// valid tag, so the fuzzer reaches her semantic checks: whatever Bob (or a
// bug) sends, she must answer or abort, never panic.
func FuzzAliceAuthenticated(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBody()
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, steps uint8) {
		cfg := testConfig("fuzz-auth", 512)
		ar, br, _ := Simulate(cfg.Channel, cfg.Qubits, cfg.Seed)
		boot := fuzzBootstrap(16 + 64*16)
		aa, err := NewAuthStore(boot)
		if err != nil {
			t.Fatal(err)
		}
		ba, _ := NewAuthStore(boot)
		a, _ := NewAlice(cfg, 0, ar, aa)
		// Optionally play the honest first exchange so later states are
		// reachable.
		next := uint64(0)
		if steps%2 == 1 {
			det := br.Detected
			m := &Message{Type: MsgDetect, Offset: 0, Length: cfg.Qubits, A: det, B: br.Bases.Select(det)}
			req, _ := ba.seal(m)
			if _, err := a.Handle(req); err != nil {
				t.Fatal(err)
			}
			next = 2
		}
		if len(body) < msgHeaderLen {
			return
		}
		b := append([]byte(nil), body...)
		for i := 0; i < 8; i++ {
			b[12+i] = byte(next >> (56 - 8*i))
		}
		pad, err := ba.take(next)
		if err != nil {
			t.Fatal(err)
		}
		req := append(b, macTag(ba.hashKey[:], pad, b)...)
		_, _ = a.Handle(req)
		if res, err := a.Result(); err == nil && res.Output != nil {
			t.Fatal("key from a fuzzed exchange")
		}
	})
}
