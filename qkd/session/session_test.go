package session

import (
	"bytes"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

var qkdKey = bytes.Repeat([]byte{0x80, 0x9c}, 16) // 256 bits

func handshake(t testing.TB, cfg Config) (*Session, *Session) {
	t.Helper()
	hs, hello, err := NewClientHandshake("6ba7b810-9dad-11d1-80b4-00c04fd430c8", qkdKey)
	if err != nil {
		t.Fatal(err)
	}
	gw, sh, err := Accept(hello, qkdKey, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, fin, err := hs.Finish(sh, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.VerifyFinish(fin); err != nil {
		t.Fatal(err)
	}
	return cl, gw
}

func TestHandshakeAgrees(t *testing.T) {
	cl, gw := handshake(t, DefaultConfig())
	if !bytes.Equal(cl.Key(), gw.Key()) || cl.ID() != gw.ID() || len(cl.Key()) != 32 {
		t.Fatal("client and gateway derived different keys")
	}
	if cl.Role() != RoleClient || gw.Role() != RoleServer {
		t.Fatal("roles")
	}
	a, _ := cl.ElectionKey("req-1")
	b, _ := gw.ElectionKey("req-1")
	c, _ := gw.ElectionKey("req-2")
	if a != b || a == c {
		t.Fatal("election keys")
	}
}

// TestCombiner recomputes the session key from its definition.
func TestCombiner(t *testing.T) {
	dk, _ := mlkem.GenerateKey768()
	ek := dk.EncapsulationKey().Bytes()
	ss, ct := dk.EncapsulationKey().Encapsulate()
	keyID := "k1"
	th := sha256.New()
	th.Write([]byte("qledger/session/v1"))
	for _, f := range [][]byte{[]byte(keyID), ek, ct} {
		th.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		th.Write(f)
	}
	want, _ := hkdf.Key(sha256.New, append(append([]byte(nil), qkdKey...), ss...), th.Sum(nil), "qledger session key v1", 32)
	got, err := DeriveSessionKey(qkdKey, ss, keyID, ek, ct)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("combiner mismatch: %v", err)
	}
	// Each input matters.
	for i, alt := range [][]byte{
		mustKey(DeriveSessionKey(append([]byte{1}, qkdKey[1:]...), ss, keyID, ek, ct)),
		mustKey(DeriveSessionKey(qkdKey, append([]byte{^ss[0]}, ss[1:]...), keyID, ek, ct)),
		mustKey(DeriveSessionKey(qkdKey, ss, "k2", ek, ct)),
		mustKey(DeriveSessionKey(qkdKey, ss, keyID, ek, append([]byte{^ct[0]}, ct[1:]...))),
	} {
		if bytes.Equal(alt, want) {
			t.Errorf("input %d does not change the key", i)
		}
	}
	if _, err := DeriveSessionKey(qkdKey[:15], ss, keyID, ek, ct); !errors.Is(err, ErrShortKey) {
		t.Error("short QKD key accepted")
	}
}

func mustKey(k []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return k
}

func TestHandshakeFailures(t *testing.T) {
	cfg := DefaultConfig()
	// Gateway holds a different QKD key (wrong key ID lookup): confirmation fails.
	hs, hello, _ := NewClientHandshake("k", qkdKey)
	_, sh, err := Accept(hello, bytes.Repeat([]byte{1}, 32), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := hs.Finish(sh, cfg); !errors.Is(err, ErrConfirm) {
		t.Fatalf("wrong QKD key: %v", err)
	}
	if _, _, err := hs.Finish(sh, cfg); !errors.Is(err, ErrState) {
		t.Fatalf("second Finish: %v", err)
	}
	// Tampered ciphertext (implicit rejection gives another secret).
	hs, hello, _ = NewClientHandshake("k", qkdKey)
	_, sh, _ = Accept(hello, qkdKey, cfg)
	sh.Ciphertext[10] ^= 1
	if _, _, err := hs.Finish(sh, cfg); !errors.Is(err, ErrConfirm) {
		t.Fatalf("tampered ciphertext: %v", err)
	}
	// Tampered client finish.
	hs, hello, _ = NewClientHandshake("k", qkdKey)
	gw, sh, _ := Accept(hello, qkdKey, cfg)
	_, fin, err := hs.Finish(sh, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fin.Confirm[0] ^= 1
	if err := gw.VerifyFinish(fin); !errors.Is(err, ErrConfirm) {
		t.Fatalf("tampered finish: %v", err)
	}
	// Malformed inputs.
	if _, _, err := NewClientHandshake("k", qkdKey[:8]); !errors.Is(err, ErrShortKey) {
		t.Error("short key")
	}
	if _, _, err := NewClientHandshake("", qkdKey); !errors.Is(err, ErrMalformed) {
		t.Error("empty key ID")
	}
	bad := hello
	bad.EncapsulationKey = bad.EncapsulationKey[:100]
	if _, _, err := Accept(bad, qkdKey, cfg); !errors.Is(err, ErrMalformed) {
		t.Error("short encapsulation key")
	}
	bad = hello
	bad.Version = 9
	if _, _, err := Accept(bad, qkdKey, cfg); !errors.Is(err, ErrVersion) {
		t.Error("version")
	}
	if _, _, err := Accept(hello, qkdKey, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Error("zero config")
	}
}

func TestEnvelope(t *testing.T) {
	cl, gw := handshake(t, DefaultConfig())
	aad := []byte("POST /api/v1/invoke")
	m1, err := cl.Seal([]byte("request 1"), aad)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := cl.Seal([]byte("request 2"), aad)
	m3, _ := cl.Seal([]byte("request 3"), aad)

	if _, err := gw.Open(m2, aad); !errors.Is(err, ErrReorder) {
		t.Fatalf("reordered: %v", err)
	}
	if pt, err := gw.Open(m1, aad); err != nil || string(pt) != "request 1" {
		t.Fatalf("open m1: %q %v", pt, err)
	}
	if _, err := gw.Open(m1, aad); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// Tampering anywhere is rejected and leaves the state unchanged.
	for i := range m2 {
		bad := append([]byte(nil), m2...)
		bad[i] ^= 0x40
		if _, err := gw.Open(bad, aad); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	if _, err := gw.Open(m2, []byte("other path")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong aad: %v", err)
	}
	if pt, err := gw.Open(m2, aad); err != nil || string(pt) != "request 2" {
		t.Fatalf("open m2 after rejects: %v", err)
	}
	// A response travels the other way under its own key.
	r1, _ := gw.Seal([]byte("response"), nil)
	if _, err := gw.Open(r1, nil); err == nil {
		t.Fatal("gateway opened its own message")
	}
	if pt, err := cl.Open(r1, nil); err != nil || string(pt) != "response" {
		t.Fatalf("response: %v", err)
	}
	// Another session's message.
	other, _ := handshake(t, DefaultConfig())
	om, _ := other.Seal([]byte("x"), nil)
	if _, err := gw.Open(om, nil); !errors.Is(err, ErrWrongSession) {
		t.Fatalf("foreign session: %v", err)
	}
	if _, err := gw.Open(m3[:20], aad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
	if pt, err := gw.Open(m3, aad); err != nil || string(pt) != "request 3" {
		t.Fatalf("m3: %v", err)
	}
}

func TestRotation(t *testing.T) {
	for _, cfg := range []Config{{MaxMessages: 3, MaxBytes: 1 << 30}, {MaxMessages: 1 << 20, MaxBytes: 100}} {
		cl, gw := handshake(t, cfg)
		var first, later []byte
		for i := 0; i < 10; i++ {
			msg := []byte(fmt.Sprintf("message %02d with some padding to count bytes.", i))
			c, err := cl.Seal(msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = c
			}
			later = c
			pt, err := gw.Open(c, nil)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("%+v message %d: %v", cfg, i, err)
			}
		}
		hf, _ := ParseHeader(first)
		hl, _ := ParseHeader(later)
		send, _ := cl.Epochs()
		_, recv := gw.Epochs()
		if hf.Epoch != 0 || hl.Epoch < 2 || send != recv || hl.Seq != 9 {
			t.Fatalf("%+v: epochs first %d last %d, sender %d receiver %d", cfg, hf.Epoch, hl.Epoch, send, recv)
		}
		// A message of an old epoch with a forged fresh sequence number fails.
		forged := append([]byte(nil), first...)
		binary.BigEndian.PutUint64(forged[1+SessionIDSize+4:], 10)
		if _, err := gw.Open(forged, nil); !errors.Is(err, ErrAuth) {
			t.Fatalf("old-epoch message: %v", err)
		}
	}
}

func TestMessageEncodings(t *testing.T) {
	hs, hello, _ := NewClientHandshake("key-1", qkdKey)
	_, sh, _ := Accept(hello, qkdKey, DefaultConfig())
	_, fin, _ := hs.Finish(sh, DefaultConfig())
	// JSON (what an HTTP API would carry).
	for _, v := range []any{&hello, &sh, &fin} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		switch x := v.(type) {
		case *ClientHello:
			var y ClientHello
			if json.Unmarshal(j, &y) != nil || y.Validate() != nil || y.KeyID != x.KeyID || !bytes.Equal(y.EncapsulationKey, x.EncapsulationKey) {
				t.Fatal("client hello JSON")
			}
		case *ServerHello:
			var y ServerHello
			if json.Unmarshal(j, &y) != nil || y.Validate() != nil || !bytes.Equal(y.Ciphertext, x.Ciphertext) {
				t.Fatal("server hello JSON")
			}
		}
	}
	// Binary.
	b1, _ := hello.MarshalBinary()
	b2, _ := sh.MarshalBinary()
	b3, _ := fin.MarshalBinary()
	var h2 ClientHello
	var s2 ServerHello
	var f2 ClientFinish
	if h2.UnmarshalBinary(b1) != nil || s2.UnmarshalBinary(b2) != nil || f2.UnmarshalBinary(b3) != nil {
		t.Fatal("binary round trip")
	}
	if h2.KeyID != "key-1" || !bytes.Equal(s2.Confirm, sh.Confirm) || !bytes.Equal(f2.Confirm, fin.Confirm) {
		t.Fatal("binary fields")
	}
	for i := 0; i < len(b2); i += 97 {
		if err := s2.UnmarshalBinary(b2[:i]); err == nil {
			t.Fatalf("truncated server hello at %d accepted", i)
		}
	}
	if err := h2.UnmarshalBinary(b2); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong type accepted: %v", err)
	}
}

func TestElectionKey(t *testing.T) {
	k := bytes.Repeat([]byte{7}, 32)
	a, err := ElectionKey(k, "request-1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hkdf.Key(sha256.New, k, nil, "qledger election key v1\x00request-1", 32)
	if !bytes.Equal(a[:], want) {
		t.Fatal("election key is not HKDF(session key, label||request ID)")
	}
	if _, err := ElectionKey(k[:4], "r"); !errors.Is(err, ErrShortKey) {
		t.Fatal("short session key")
	}
}

func FuzzUnmarshal(f *testing.F) {
	hs, hello, _ := NewClientHandshake("key-1", qkdKey)
	_, sh, _ := Accept(hello, qkdKey, DefaultConfig())
	_, fin, _ := hs.Finish(sh, DefaultConfig())
	for _, m := range []interface{ MarshalBinary() ([]byte, error) }{&hello, &sh, &fin} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h ClientHello
		var s ServerHello
		var c ClientFinish
		for _, u := range []interface{ UnmarshalBinary([]byte) error }{&h, &s, &c} {
			if err := u.UnmarshalBinary(b); err == nil {
				again, err := u.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
				if err != nil || !bytes.Equal(again, b) {
					t.Fatalf("decoded but does not re-encode: %v", err)
				}
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	cl, _ := handshake(f, DefaultConfig())
	m, _ := cl.Seal([]byte("hello"), nil)
	f.Add(m)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, gw := handshake(t, DefaultConfig())
		if _, err := gw.Open(b, nil); err == nil {
			t.Fatal("forged envelope opened")
		}
		_, _ = ParseHeader(b)
	})
}
