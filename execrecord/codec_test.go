package execrecord

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qledger/chain"
	"qledger/election"
	"qledger/function"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenRecord is a fixed record of a disagreement settled by the
// tie-breaker: three candidates, three executions, one failed.
func goldenRecord(t testing.TB) Record {
	t.Helper()
	rid := [32]byte{1, 2, 3}
	key, err := election.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), rid[:])
	if err != nil {
		t.Fatal(err)
	}
	var reveals []election.Reveal
	for i, id := range []string{"node-a", "node-b", "node-c"} {
		var n [election.Size]byte
		n[0] = byte(i + 1)
		reveals = append(reveals, election.Reveal{NodeID: id, Nonce: n})
	}
	el, err := election.Elect(key, "key-1", rid[:], reveals)
	if err != nil {
		t.Fatal(err)
	}
	ok := function.ResultHash(function.OutcomeOK, 0, []byte(`{"value":2}`))
	forged := function.ResultHash(function.OutcomeOK, 0, []byte(`{"value":999}`))
	return Record{
		Version: Version, RequestID: rid, Caller: "submitter:alice", Route: "least-load",
		Function: "inc", FnVersion: "1", CodeHash: chain.Hash{9}, InputHash: chain.Hash{8}, Input: []byte(`{"value":1}`),
		Timestamp: 1_700_000_000_000_000_000, Election: el,
		Executor: el.Executor(), Verifier: el.Verifier(), TieBreaker: el.TieBreaker(),
		Executions: []Execution{
			{NodeID: el.Executor(), Outcome: function.OutcomeOK, Stdout: []byte(`{"value":999}`), Hash: forged, Micros: 120},
			{NodeID: el.Verifier(), Err: "rpc to 10.0.0.2:7000: timeout"},
			{NodeID: el.TieBreaker(), Outcome: function.OutcomeOK, Stdout: []byte(`{"value":2}`), Hash: ok, Detail: "", Micros: 130},
		},
		Agreed: false, Verified: false, Conflict: "node-a: ok 3f...; node-b failed; node-c: ok 7a...",
		Outcome: 0, Micros: 4242,
	}
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

func TestGoldenBinary(t *testing.T) {
	rec := goldenRecord(t)
	bin, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "record_v2.hex", []byte(hex.EncodeToString(bin)+"\n"))
	back, err := Decode(bin)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(again, bin) || back.Version != Version {
		t.Fatal("binary round trip changes the record")
	}
	if err := election.Verify(back.Election); err != nil {
		t.Fatal(err)
	}
}

// A version 1 record, the JSON leaders wrote before the binary encoding
// (testdata/record_v1.json has the exact field set of that format), still
// decodes, to the same content.
func TestReadsVersion1JSON(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("testdata", "record_v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenRecord(t)
	want.Version = VersionJSON
	if rec.Version != VersionJSON || rec.Function != "inc" || rec.Agreed || len(rec.Executions) != 3 || rec.Executions[1].Err == "" {
		t.Fatalf("version 1 record: %+v", rec)
	}
	a, _ := rec.MarshalBinary()
	b, _ := want.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatal("the version 1 record does not hold the golden record's content")
	}
	if err := election.Verify(rec.Election); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejects(t *testing.T) {
	bin, _ := goldenRecord(t).MarshalBinary()
	for i := 0; i < len(bin); i++ {
		if _, err := Decode(bin[:i]); err == nil {
			t.Fatalf("a prefix of %d bytes decodes", i)
		} else if i > 0 && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(bin)) }
	js, _ := os.ReadFile(filepath.Join("testdata", "record_v1.json"))
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"trailing byte", append(bytes.Clone(bin), 0), ErrTrailingBytes},
		{"version 1 in binary", mut(func(b []byte) []byte { b[0] = 1; return b }), ErrUnknownVersion},
		{"version 4", mut(func(b []byte) []byte { b[0] = 4; return b }), ErrUnknownVersion},
		{"version 3 without its origin", mut(func(b []byte) []byte { b[0] = 3; return b }), ErrTruncated},
		{"version 3 with an empty origin", mut(func(b []byte) []byte { b[0] = 3; return append(b, 0, 0, 0) }), ErrMalformed},
		{"version 3 with a nameless header", mut(func(b []byte) []byte { b[0] = 3; return append(b, 0, 0, 1, 0, 0, 1, 'x') }), ErrMalformed},
		{"oversize caller", mut(func(b []byte) []byte { b[33], b[34] = 0xff, 0xff; return b }), ErrTooLarge},
		{"JSON version 2", []byte(strings.Replace(string(js), `"version": 1`, `"version": 2`, 1)), ErrUnknownVersion},
		{"JSON unknown field", []byte(strings.Replace(string(js), `"version": 1`, `"version": 1, "extra": 0`, 1)), ErrMalformed},
		{"JSON trailing data", append(bytes.Clone(js), []byte(`{}`)...), ErrTrailingBytes},
		{"JSON bad outcome", []byte(strings.Replace(string(js), `"outcome": "ok"`, `"outcome": "fine"`, 1)), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Decode(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The flags byte sits just before the conflict; unknown bits are refused.
	rec := goldenRecord(t)
	off := len(bin) - (4 + len(rec.Conflict) + 32 + 1 + 4 + 4 + len(rec.Response) + 8) - 1
	if bin[off] != 0 {
		t.Fatalf("flags byte at %d is %#x", off, bin[off])
	}
	if _, err := Decode(mut(func(b []byte) []byte { b[off] = 0x80; return b })); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown flag: %v", err)
	}
	bad := goldenRecord(t)
	bad.Outcome = 77
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown outcome encoded: %v", err)
	}
	bad = goldenRecord(t)
	bad.Executions = make([]Execution, MaxExecutions+1)
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too many executions encoded: %v", err)
	}
}

// writeV1 writes testdata/record_v1.json with -update: the golden record
// as version 1 leaders wrote it (json.Marshal of the same fields).
func TestWriteVersion1Golden(t *testing.T) {
	if !*update {
		t.Skip("only with -update")
	}
	rec := goldenRecord(t)
	rec.Version = VersionJSON
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "record_v1.json", append(js, '\n'))
}

// FuzzDecode: Decode never panics; a binary record that decodes
// re-encodes to the same bytes; a version 1 record that decodes encodes
// in binary and decodes back to the same encoding.
func FuzzDecode(f *testing.F) {
	bin, _ := goldenRecord(f).MarshalBinary()
	f.Add(bin)
	f.Add([]byte{Version})
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Decode(b)
		if err != nil {
			return
		}
		again, err := rec.MarshalBinary()
		if rec.Version == Version && (err != nil || !bytes.Equal(again, b)) {
			t.Fatalf("binary re-encoding differs: %v", err)
		}
		if err != nil {
			return // a version 1 record the binary form cannot hold
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if twice, _ := back.MarshalBinary(); !bytes.Equal(twice, again) {
			t.Fatal("binary encoding not stable")
		}
	})
}

// A record with an origin is written as version 3 and reads back the
// same; one without keeps the version 2 encoding (the golden file).
func TestOriginVersion3(t *testing.T) {
	rec := goldenRecord(t)
	v2, err := rec.MarshalBinary()
	if err != nil || v2[0] != Version {
		t.Fatalf("without an origin: version %d, %v", v2[0], err)
	}
	rec.Origin = Origin{ClientAddr: "192.0.2.7:51234", Headers: []Header{{Name: "User-Agent", Value: "qledger-test"}, {Name: "X-Request-Id", Value: ""}}}
	v3, err := rec.MarshalBinary()
	if err != nil || v3[0] != VersionOrigin || !bytes.HasPrefix(v3[1:], v2[1:]) {
		t.Fatalf("with an origin: %v", err)
	}
	back, err := Decode(v3)
	if err != nil || back.Version != VersionOrigin || back.Origin.ClientAddr != rec.Origin.ClientAddr || len(back.Origin.Headers) != 2 || back.Origin.Headers[1].Name != "X-Request-Id" {
		t.Fatalf("round trip: %+v %v", back.Origin, err)
	}
	if again, _ := back.MarshalBinary(); !bytes.Equal(again, v3) {
		t.Fatal("version 3 does not re-encode to the same bytes")
	}
	rec.Origin.Headers = make([]Header, MaxHeaders+1)
	if _, err := rec.MarshalBinary(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too many headers: %v", err)
	}
	js, _ := json.Marshal(goldenRecord(t))
	if bytes.Contains(js, []byte(`"origin"`)) {
		t.Fatalf("an empty origin appears in JSON: %s", js)
	}
}
