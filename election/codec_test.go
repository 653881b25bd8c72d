package election

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenRecord is a fixed three-candidate election.
func goldenRecord(t testing.TB) Record {
	key, err := DeriveKey(testSessionKey, []byte("req-golden"))
	if err != nil {
		t.Fatal(err)
	}
	var reveals []Reveal
	for i, id := range []string{"node-a", "node-b", "node-c"} {
		var n [Size]byte
		for j := range n {
			n[j] = byte(i*Size + j)
		}
		reveals = append(reveals, Reveal{NodeID: id, Nonce: n})
	}
	rec, err := Elect(key, "5f1e2d3c-0000-4000-8000-000000000001", []byte("req-golden"), reveals)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file:\n got %s\nwant %s", name, got, want)
	}
}

func TestGoldenEncodings(t *testing.T) {
	rec := goldenRecord(t)
	if err := Verify(rec); err != nil {
		t.Fatal(err)
	}
	bin, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "record_v1.hex", []byte(hex.EncodeToString(bin)+"\n"))
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "record_v1.json", append(js, '\n'))

	var fromBin, fromJSON Record
	if err := fromBin.UnmarshalBinary(bin); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	for _, back := range []Record{fromBin, fromJSON} {
		if err := VerifyWithSessionKey(back, testSessionKey); err != nil {
			t.Fatal(err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(again, bin) {
			t.Fatal("round trip changes the encoding")
		}
	}
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for n := 1; n <= 40; n += 3 {
		rec, _ := randomRecord(t, r, n, "req-rt")
		bin, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Record
		if err := back.UnmarshalBinary(bin); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(rec)
		var backJ Record
		if err := json.Unmarshal(js, &backJ); err != nil {
			t.Fatal(err)
		}
		b1, _ := back.MarshalBinary()
		b2, _ := backJ.MarshalBinary()
		if !bytes.Equal(b1, bin) || !bytes.Equal(b2, bin) {
			t.Fatalf("n=%d: round trip differs", n)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	bin, _ := goldenRecord(t).MarshalBinary()
	var rec Record
	for i := 0; i < len(bin); i++ {
		if err := rec.UnmarshalBinary(bin[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	if err := rec.UnmarshalBinary(append(bytes.Clone(bin), 0)); !errors.Is(err, ErrTrailingBytes) {
		t.Fatalf("trailing: %v", err)
	}
	v2 := bytes.Clone(bin)
	v2[0] = 2
	if err := rec.UnmarshalBinary(v2); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("version: %v", err)
	}
	// The candidate count sits after version, request ID, key ID and
	// commitment.
	g := goldenRecord(t)
	off := 1 + 1 + len(g.RequestID) + 1 + len(g.KeyID) + Size
	huge := bytes.Clone(bin)
	huge[off], huge[off+1] = 0xff, 0xff
	if err := rec.UnmarshalBinary(huge); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("65535 candidates: %v", err)
	}
	long := g
	long.KeyID = strings.Repeat("k", MaxIDLen+1)
	if _, err := long.MarshalBinary(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long key ID: %v", err)
	}
}

func TestJSONStrict(t *testing.T) {
	js, _ := json.Marshal(goldenRecord(t))
	good := string(js)
	cases := []struct {
		name, in string
		want     error
	}{
		{"unknown field", strings.Replace(good, `"key_id"`, `"extra":1,"key_id"`, 1), ErrMalformed},
		{"version", strings.Replace(good, `"version":1`, `"version":2`, 1), ErrUnknownVersion},
		{"bad hex", strings.Replace(good, `"key_commitment":"`, `"key_commitment":"zz`, 1), ErrMalformed},
		{"short hash", strings.Replace(good, `"h":"`, `"h":"00`, 1), ErrMalformed},
		{"roles", strings.Replace(good, `"executor":"`, `"executor":"x`, 1), ErrMalformed},
		{"not an object", `[]`, ErrMalformed},
	}
	for _, c := range cases {
		var rec Record
		if err := json.Unmarshal([]byte(c.in), &rec); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzDecode: decoding never panics, and whatever decodes re-encodes to the
// same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	bin, _ := goldenRecord(f).MarshalBinary()
	f.Add(bin)
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		if err := rec.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := rec.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		_ = Verify(rec)
	})
}
