package sharing_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"qledger/sharing"
)

// sampleShares returns one split per mode with several frames where the
// mode has frames.
func sampleShares(t *testing.T) map[sharing.Scheme][]*sharing.Share {
	out := map[sharing.Scheme][]*sharing.Share{}
	data := testData(2500, 11)
	for _, s := range allSchemes {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:33]
		}
		out[s] = split(t, d, sharing.Options{Scheme: s, Threshold: 3, Shares: 5, SegmentSize: 1000, Rand: newDetRand(5)})
	}
	return out
}

func TestBinaryRoundTrip(t *testing.T) {
	for s, shares := range sampleShares(t) {
		for _, sh := range shares {
			enc := encode(t, sh)
			got, err := sharing.DecodeShare(enc)
			if err != nil {
				t.Fatalf("%v: %v", s, err)
			}
			if !reflect.DeepEqual(got, sh) {
				t.Fatalf("%v: decoded share differs:\n%+v\n%+v", s, got, sh)
			}
			var u sharing.Share
			if err := u.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(&u, sh) {
				t.Fatalf("%v: UnmarshalBinary: %v", s, err)
			}
			if int64(len(enc)) != sh.EncodedLen() {
				t.Fatalf("%v: EncodedLen %d, encoding %d", s, sh.EncodedLen(), len(enc))
			}
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for s, shares := range sampleShares(t) {
		for _, sh := range shares {
			b, err := json.Marshal(sh)
			if err != nil {
				t.Fatal(err)
			}
			var got sharing.Share
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%v: %v\n%s", s, err, b)
			}
			if !reflect.DeepEqual(&got, sh) {
				t.Fatalf("%v: JSON round trip differs", s)
			}
			if err := got.Verify(); err != nil {
				t.Fatal(err)
			}
		}
		// Offline recovery from JSON files of the last t shares.
		var back []*sharing.Share
		for _, sh := range shares[2:] {
			b, _ := json.Marshal(sh)
			var x sharing.Share
			if err := json.Unmarshal(b, &x); err != nil {
				t.Fatal(err)
			}
			back = append(back, &x)
		}
		if _, _, err := sharing.Recover(back); err != nil {
			t.Fatalf("%v: recover from JSON: %v", s, err)
		}
	}
}

// TestJSONDocumentedFields checks the field names promised for the export
// files.
func TestJSONDocumentedFields(t *testing.T) {
	for s, shares := range sampleShares(t) {
		b, _ := json.Marshal(shares[0])
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"format", "version", "scheme", "split_id", "t", "n", "index", "length", "share", "hash"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v: no %q", s, k)
			}
		}
		if m["scheme"] != s.String() || m["format"] != "qledger-share" {
			t.Errorf("%v: scheme %v format %v", s, m["scheme"], m["format"])
		}
		var params map[string]any
		switch s {
		case sharing.Paper:
			params, _ = m["paper"].(map[string]any)
		case sharing.AsmuthBloom:
			params, _ = m["asmuth_bloom"].(map[string]any)
		case sharing.Dispersal:
			d, _ := m["dispersal"].(map[string]any)
			rs, _ := d["reed_solomon"].(map[string]any)
			if rs["data_shards"] != 3.0 || rs["parity_shards"] != 2.0 {
				t.Errorf("dispersal RS parameters %v", rs)
			}
			params, _ = d["key_share"].(map[string]any)
		}
		if _, ok := params["modulus"]; !ok {
			t.Errorf("%v: no modulus in %v", s, params)
		}
	}
}

func TestJSONRejects(t *testing.T) {
	shares := sampleShares(t)
	good, _ := json.Marshal(shares[sharing.Paper][1])
	goodD, _ := json.Marshal(shares[sharing.Dispersal][1])
	goodA, _ := json.Marshal(shares[sharing.AsmuthBloom][1])
	var m map[string]any
	json.Unmarshal(good, &m)
	modulus := m["paper"].(map[string]any)["modulus"].(string)
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"not json", "{", sharing.ErrMalformed},
		{"unknown field", strings.Replace(string(good), `"format"`, `"extra":1,"format"`, 1), sharing.ErrMalformed},
		{"trailing data", string(good) + "{}", sharing.ErrMalformed},
		{"format", strings.Replace(string(good), "qledger-share", "other", 1), sharing.ErrMalformed},
		{"version", strings.Replace(string(good), `"version":1`, `"version":2`, 1), sharing.ErrVersion},
		{"scheme", strings.Replace(string(good), `"scheme":"paper"`, `"scheme":"shamir"`, 1), sharing.ErrUnknownScheme},
		{"wrong modulus", strings.Replace(string(good), modulus, "ff"+modulus[2:], 1), sharing.ErrMalformed},
		{"uppercase modulus", strings.Replace(string(good), modulus, strings.ToUpper(modulus), 1), sharing.ErrMalformed},
		{"bad hash hex", strings.Replace(string(good), `"hash":"`, `"hash":"zz`, 1), sharing.ErrMalformed},
		{"bad base64", strings.Replace(string(good), `"share":"`, `"share":"!`, 1), sharing.ErrMalformed},
		{"index out of range", strings.Replace(string(good), `"index":1`, `"index":9`, 1), sharing.ErrMalformed},
		{"scheme without params", strings.Replace(string(good), `"scheme":"paper"`, `"scheme":"dispersal"`, 1), sharing.ErrMalformed},
		{"rs params", strings.Replace(string(goodD), `"parity_shards":2`, `"parity_shards":3`, 1), sharing.ErrMalformed},
		{"cipher", strings.Replace(string(goodD), `AES-256-GCM`, `AES-128-GCM`, 1), sharing.ErrMalformed},
		{"d0 bits", strings.Replace(string(goodA), `"d0_bits":264`, `"d0_bits":256`, 1), sharing.ErrMalformed},
		{"short nonce", strings.Replace(string(goodD), `"nonce_prefix":"`, `"nonce_prefix":"00`, 1), sharing.ErrMalformed},
	} {
		var s sharing.Share
		err := s.UnmarshalJSON([]byte(tc.in))
		if tc.in == string(good) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A JSON share whose content was changed decodes but fails Verify.
	b := strings.Replace(string(good), `"length":2500`, `"length":2499`, 1)
	var s sharing.Share
	if err := json.Unmarshal([]byte(b), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); !errors.Is(err, sharing.ErrTampered) {
		t.Fatalf("changed length: %v", err)
	}
}

// TestDecodeTruncated: every proper prefix of a valid encoding is refused,
// as are the encoding with a byte appended and the empty input.
func TestDecodeTruncated(t *testing.T) {
	for s, shares := range sampleShares(t) {
		enc := encode(t, shares[4])
		for i := 0; i < len(enc); i++ {
			if _, err := sharing.DecodeShare(enc[:i]); !errors.Is(err, sharing.ErrMalformed) {
				t.Fatalf("%v: prefix of %d/%d bytes: %v", s, i, len(enc), err)
			}
		}
		if _, err := sharing.DecodeShare(append(append([]byte(nil), enc...), 0)); !errors.Is(err, sharing.ErrMalformed) {
			t.Fatalf("%v: trailing byte: %v", s, err)
		}
	}
}

// Offsets in the version 1 header.
const (
	offVersion = 4
	offScheme  = 5
	offT       = 6
	offN       = 7
	offIndex   = 8
	offSegment = 25
	offPLen    = 29
	headerLen  = 31
)

func TestDecodeMalformed(t *testing.T) {
	shares := sampleShares(t)
	paper := encode(t, shares[sharing.Paper][1])
	disp := encode(t, shares[sharing.Dispersal][1])
	ab := encode(t, shares[sharing.AsmuthBloom][1])
	plen := int(binary.BigEndian.Uint16(paper[offPLen:]))
	firstFrame := headerLen + plen
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, sharing.ErrMalformed},
		{"magic", mutate(paper, func(b []byte) []byte { b[0] = 'X'; return b }), sharing.ErrMalformed},
		{"version 0", mutate(paper, func(b []byte) []byte { b[offVersion] = 0; return b }), sharing.ErrVersion},
		{"version 2", mutate(paper, func(b []byte) []byte { b[offVersion] = 2; return b }), sharing.ErrVersion},
		{"scheme 0", mutate(paper, func(b []byte) []byte { b[offScheme] = 0; return b }), sharing.ErrUnknownScheme},
		{"scheme 4", mutate(paper, func(b []byte) []byte { b[offScheme] = 4; return b }), sharing.ErrUnknownScheme},
		{"t = 0", mutate(paper, func(b []byte) []byte { b[offT] = 0; return b }), sharing.ErrMalformed},
		{"t > n", mutate(paper, func(b []byte) []byte { b[offT] = 6; return b }), sharing.ErrMalformed},
		{"n = 0", mutate(paper, func(b []byte) []byte { b[offN] = 0; return b }), sharing.ErrMalformed},
		{"index = n", mutate(paper, func(b []byte) []byte { b[offIndex] = 5; return b }), sharing.ErrMalformed},
		{"segment 0", mutate(disp, func(b []byte) []byte { binary.BigEndian.PutUint32(b[offSegment:], 0); return b }), sharing.ErrMalformed},
		{"segment huge", mutate(disp, func(b []byte) []byte { binary.BigEndian.PutUint32(b[offSegment:], 1<<31); return b }), sharing.ErrMalformed},
		{"paper segment not whole chunks", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint32(b[offSegment:], 1001); return b }), sharing.ErrMalformed},
		{"asmuth-bloom with a segment", mutate(ab, func(b []byte) []byte { binary.BigEndian.PutUint32(b[offSegment:], 64); return b }), sharing.ErrMalformed},
		{"params oversize", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint16(b[offPLen:], 0xffff); return b }), sharing.ErrMalformed},
		{"params short", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint16(b[offPLen:], 5); return b }), sharing.ErrMalformed},
		{"paper modulus bits", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint16(b[headerLen:], 65); return b }), sharing.ErrMalformed},
		{"paper chunk too big", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerLen+2:], 1<<20); return b }), sharing.ErrMalformed},
		{"key modulus bits", mutate(disp, func(b []byte) []byte { b[headerLen+1]++; return b }), sharing.ErrMalformed},
		{"frame flag 2", mutate(paper, func(b []byte) []byte { b[firstFrame] = 2; return b }), sharing.ErrMalformed},
		{"first frame marked last", mutate(paper, func(b []byte) []byte { b[firstFrame] = 1; return b }), sharing.ErrMalformed},
		{"frame too long", mutate(paper, func(b []byte) []byte { binary.BigEndian.PutUint32(b[firstFrame+1:], 1<<30); return b }), sharing.ErrMalformed},
		{"length 0", mutate(ab, func(b []byte) []byte { clear(b[len(b)-32-10 : len(b)-32-2]); return b }), sharing.ErrMalformed},
		{"length mismatch", mutate(ab, func(b []byte) []byte { b[len(b)-32-3]++; return b }), sharing.ErrMalformed},
		{"trailer oversize", mutate(ab, func(b []byte) []byte { binary.BigEndian.PutUint16(b[len(b)-32-2:], 0xffff); return b }), sharing.ErrMalformed},
		{"proof count", mutate(disp, func(b []byte) []byte {
			// The proof count byte precedes the proof hashes.
			n := len(shares[sharing.Dispersal][1].Dispersal.Proof)
			b[len(b)-32-32*n-1]++
			return b
		}), sharing.ErrMalformed},
	} {
		if tc.name != "empty" && bytes.Equal(tc.in, paper) {
			t.Fatalf("%s: mutation did nothing", tc.name)
		}
		_, err := sharing.DecodeShare(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestMarshalRejectsInvalid: a share whose fields are out of range is not
// encoded and does not verify.
func TestMarshalRejectsInvalid(t *testing.T) {
	base := sampleShares(t)[sharing.Dispersal][0]
	for _, tc := range []struct {
		name string
		f    func(*sharing.Share)
	}{
		{"version", func(s *sharing.Share) { s.Version = 2 }},
		{"scheme", func(s *sharing.Share) { s.Scheme = 0 }},
		{"two parameter sets", func(s *sharing.Share) { s.Paper = &sharing.PaperParams{} }},
		{"no parameters", func(s *sharing.Share) { s.Dispersal = nil }},
		{"wrong parameters", func(s *sharing.Share) { s.Scheme = sharing.Paper }},
		{"payload length", func(s *sharing.Share) { s.Payload = s.Payload[1:] }},
		{"proof length", func(s *sharing.Share) { s.Dispersal.Proof = s.Dispersal.Proof[1:] }},
		{"key share length", func(s *sharing.Share) { s.Dispersal.KeyShare = s.Dispersal.KeyShare[1:] }},
		{"length", func(s *sharing.Share) { s.Length = 0 }},
		{"huge length", func(s *sharing.Share) { s.Length = sharing.MaxLength + 1 }},
		{"n", func(s *sharing.Share) { s.Total = 256 }},
		{"index", func(s *sharing.Share) { s.Index = -1 }},
	} {
		s := clone(base)
		tc.f(s)
		if _, err := s.MarshalBinary(); !errors.Is(err, sharing.ErrMalformed) && !errors.Is(err, sharing.ErrVersion) && !errors.Is(err, sharing.ErrUnknownScheme) {
			t.Errorf("%s: MarshalBinary: %v", tc.name, err)
		}
		if _, err := s.MarshalJSON(); err == nil {
			t.Errorf("%s: MarshalJSON accepted", tc.name)
		}
		if err := s.Verify(); err == nil {
			t.Errorf("%s: Verify accepted", tc.name)
		}
		if _, err := s.ShardHash(); err == nil {
			t.Errorf("%s: ShardHash accepted", tc.name)
		}
		if _, err := s.Modulus(); err == nil {
			t.Errorf("%s: Modulus accepted", tc.name)
		}
	}
	var nilShare *sharing.Share
	if err := nilShare.Verify(); !errors.Is(err, sharing.ErrMalformed) {
		t.Errorf("nil Verify: %v", err)
	}
}

// TestModulus: the public moduli are derived, not stored, and agree with
// what the JSON form exports.
func TestModulus(t *testing.T) {
	for s, shares := range sampleShares(t) {
		a, err := shares[0].Modulus()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := shares[1].Modulus()
		k, err := shares[0].KeyModulus()
		if err != nil {
			t.Fatal(err)
		}
		switch s {
		case sharing.Dispersal:
			if a != nil || k == nil || k.BitLen() != shares[0].Dispersal.KeyModulusBits {
				t.Errorf("dispersal moduli %v %v", a, k)
			}
		default:
			if a == nil || b == nil || a.Cmp(b) == 0 || k != nil {
				t.Errorf("%v moduli %v %v %v", s, a, b, k)
			}
		}
	}
}
