package function_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"qledger/function"
)

func goldenSpec() function.Spec {
	s := function.Spec{
		Name:           "increment",
		Version:        "1.0.0",
		MemoryPages:    256,
		Timeout:        5 * time.Second,
		MaxOutputBytes: 1 << 20,
		MaxStderrBytes: 64 << 10,
	}
	for i := range s.CodeHash {
		s.CodeHash[i] = byte(i)
	}
	return s
}

// The canonical encoding is part of the deploy transaction format; this
// vector pins it.
const goldenSpecHex = "01" + "09" + "696e6372656d656e74" + "05" + "312e302e30" +
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
	"00000100" + "000000012a05f200" + "00100000" + "00010000"

func TestSpecGoldenEncoding(t *testing.T) {
	b, err := goldenSpec().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != goldenSpecHex {
		t.Fatalf("encoding\n got %s\nwant %s", got, goldenSpecHex)
	}
	var back function.Spec
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back != goldenSpec() {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestSpecValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*function.Spec)
	}{
		{"empty name", func(s *function.Spec) { s.Name = "" }},
		{"upper-case name", func(s *function.Spec) { s.Name = "Increment" }},
		{"name starting with a dash", func(s *function.Spec) { s.Name = "-x" }},
		{"name with a slash", func(s *function.Spec) { s.Name = "a/b" }},
		{"long name", func(s *function.Spec) { s.Name = strings.Repeat("a", function.MaxNameLen+1) }},
		{"empty version", func(s *function.Spec) { s.Version = "" }},
		{"version with a space", func(s *function.Spec) { s.Version = "1 0" }},
		{"long version", func(s *function.Spec) { s.Version = strings.Repeat("1", function.MaxVersionLen+1) }},
		{"zero pages", func(s *function.Spec) { s.MemoryPages = 0 }},
		{"too many pages", func(s *function.Spec) { s.MemoryPages = function.MaxMemoryPages + 1 }},
		{"zero timeout", func(s *function.Spec) { s.Timeout = 0 }},
		{"negative timeout", func(s *function.Spec) { s.Timeout = -time.Second }},
		{"long timeout", func(s *function.Spec) { s.Timeout = function.MaxTimeout + 1 }},
		{"large output", func(s *function.Spec) { s.MaxOutputBytes = function.MaxOutputLimit + 1 }},
		{"large stderr", func(s *function.Spec) { s.MaxStderrBytes = function.MaxStderrLimit + 1 }},
	}
	if err := goldenSpec().Validate(); err != nil {
		t.Fatalf("golden spec: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goldenSpec()
			c.edit(&s)
			if err := s.Validate(); !errors.Is(err, function.ErrInvalidSpec) {
				t.Fatalf("Validate = %v, want ErrInvalidSpec", err)
			}
			if _, err := s.MarshalBinary(); !errors.Is(err, function.ErrInvalidSpec) {
				t.Fatalf("MarshalBinary = %v, want ErrInvalidSpec", err)
			}
		})
	}
}

func TestSpecDecodeStrict(t *testing.T) {
	good, _ := hex.DecodeString(goldenSpecHex)
	mut := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, function.ErrTruncated},
		{"truncated", good[:len(good)-1], function.ErrTruncated},
		{"trailing byte", append(bytes.Clone(good), 0), function.ErrTrailingBytes},
		{"version 0", mut(func(b []byte) []byte { b[0] = 0; return b }), function.ErrUnknownVersion},
		{"version 3", mut(func(b []byte) []byte { b[0] = 3; return b }), function.ErrUnknownVersion},
		{"version 2 without its policy", mut(func(b []byte) []byte { b[0] = 2; return b }), function.ErrTruncated},
		{"version 2 with the default policy", mut(func(b []byte) []byte { b[0] = 2; return append(b, 0) }), function.ErrInvalidSpec},
		{"version 2 with an unknown policy", mut(func(b []byte) []byte { b[0] = 2; return append(b, 7) }), function.ErrInvalidSpec},
		{"oversize name", mut(func(b []byte) []byte { b[1] = function.MaxNameLen + 1; return b }), function.ErrTooLarge},
		{"oversize timeout", mut(func(b []byte) []byte {
			copy(b[len(b)-16:], []byte{0xff, 0, 0, 0, 0, 0, 0, 0})
			return b
		}), function.ErrTooLarge},
		{"invalid pages", mut(func(b []byte) []byte {
			copy(b[len(b)-20:], []byte{0, 0, 0, 0})
			return b
		}), function.ErrInvalidSpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s function.Spec
			if err := s.UnmarshalBinary(c.in); !errors.Is(err, c.want) {
				t.Fatalf("UnmarshalBinary = %v, want %v", err, c.want)
			}
		})
	}
}

func TestSpecJSON(t *testing.T) {
	b, err := json.Marshal(goldenSpec())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"increment","version":"1.0.0","code_hash":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","memory_pages":256,"timeout":"5s","max_output_bytes":1048576,"max_stderr_bytes":65536}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back function.Spec
	if err := json.Unmarshal(b, &back); err != nil || back != goldenSpec() {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{
		strings.Replace(want, `"timeout"`, `"extra":1,"timeout"`, 1),
		strings.Replace(want, `"000102`, `"zz0102`, 1),
		strings.Replace(want, `"5s"`, `"5 parsecs"`, 1),
		strings.Replace(want, `"memory_pages":256`, `"memory_pages":0`, 1),
	} {
		if err := json.Unmarshal([]byte(bad), &back); !errors.Is(err, function.ErrInvalidSpec) {
			t.Errorf("Unmarshal(%s) = %v, want ErrInvalidSpec", bad, err)
		}
	}
}

func TestDeploymentEncoding(t *testing.T) {
	modBytes := []byte("\x00asm\x01\x00\x00\x00")
	d := function.Deployment{Spec: goldenSpec(), Code: modBytes}
	d.Spec.CodeHash = sha256.Sum256(modBytes)
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back function.Deployment
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.Spec != d.Spec || !bytes.Equal(back.Code, d.Code) {
		t.Fatalf("round trip: %+v", back)
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}

	// The code must hash to the spec's code hash, in both directions.
	wrong := d
	wrong.Code = []byte("\x00asm\x01\x00\x00\x01")
	if _, err := wrong.MarshalBinary(); !errors.Is(err, function.ErrCodeHash) {
		t.Fatalf("MarshalBinary with wrong code = %v, want ErrCodeHash", err)
	}
	tampered := bytes.Clone(b)
	tampered[len(tampered)-1] ^= 1
	if err := back.UnmarshalBinary(tampered); !errors.Is(err, function.ErrCodeHash) {
		t.Fatalf("tampered code: %v, want ErrCodeHash", err)
	}

	// A code length above MaxCodeBytes is refused before any allocation.
	huge := bytes.Clone(b[:len(b)-len(modBytes)-4])
	huge = append(huge, 0xff, 0xff, 0xff, 0xff)
	if err := back.UnmarshalBinary(huge); !errors.Is(err, function.ErrTooLarge) {
		t.Fatalf("huge code length: %v, want ErrTooLarge", err)
	}
	if err := back.UnmarshalBinary(append(bytes.Clone(b), 0)); !errors.Is(err, function.ErrTrailingBytes) {
		t.Fatalf("trailing: %v", err)
	}
	bad := bytes.Clone(b)
	bad[0] = 9
	if err := back.UnmarshalBinary(bad); !errors.Is(err, function.ErrUnknownVersion) {
		t.Fatalf("version: %v", err)
	}
	empty := function.Deployment{Spec: goldenSpec()}
	if err := empty.Validate(); !errors.Is(err, function.ErrEmptyCode) {
		t.Fatalf("empty code: %v", err)
	}
}

func TestOutcomeText(t *testing.T) {
	for o := function.OutcomeOK; o <= function.OutcomeBadExit; o++ {
		b, err := o.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back function.Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Fatalf("%s: %v %v", b, back, err)
		}
	}
	var o function.Outcome
	if err := o.UnmarshalText([]byte("fine")); err == nil {
		t.Fatal("unknown outcome accepted")
	}
	if _, err := function.Outcome(0).MarshalText(); err == nil {
		t.Fatal("zero outcome marshaled")
	}
}

// ResultHash is documented as SHA-256 over a label, the outcome, the exit
// code and the length-prefixed stdout; recompute it from that description.
func TestResultHashEncoding(t *testing.T) {
	stdout := []byte(`{"value":101}`)
	var buf bytes.Buffer
	buf.WriteString("qledger/execute/result/v1")
	buf.WriteByte(1)
	buf.Write([]byte{0, 0, 0, 0})
	buf.Write([]byte{0, 0, 0, 0, 0, 0, 0, byte(len(stdout))})
	buf.Write(stdout)
	if got, want := function.ResultHash(function.OutcomeOK, 0, stdout), sha256.Sum256(buf.Bytes()); got != want {
		t.Fatalf("ResultHash = %x, want %x", got, want)
	}
	if function.ResultHash(function.OutcomeTimeout, 0, nil) == function.ResultHash(function.OutcomeOK, 0, nil) {
		t.Fatal("a timeout hashes like an empty success")
	}
}

// FuzzDecode: decoding a Spec or a Deployment never panics, and whatever
// decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	good, _ := hex.DecodeString(goldenSpecHex)
	f.Add(good)
	mod := []byte("\x00asm\x01\x00\x00\x00")
	d := function.Deployment{Spec: goldenSpec(), Code: mod}
	d.Spec.CodeHash = sha256.Sum256(mod)
	db, _ := d.MarshalBinary()
	f.Add(db)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s function.Spec
		if err := s.UnmarshalBinary(b); err == nil {
			again, err := s.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("spec re-encoding differs: %v", err)
			}
		}
		var dep function.Deployment
		if err := dep.UnmarshalBinary(b); err == nil {
			again, err := dep.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("deployment re-encoding differs: %v", err)
			}
		}
	})
}

// The unverified policy: the default keeps the version 1 encodings (and
// JSON) byte for byte; refuse is written as version 2 and read back.
func TestUnverifiedPolicyEncoding(t *testing.T) {
	code := []byte("\x00asm\x01\x00\x00\x00")
	d := function.Deployment{Spec: function.DefaultSpec("inc", "1", code), Code: code}
	for _, p := range []function.UnverifiedPolicy{function.UnverifiedAccept, function.UnverifiedRefuse} {
		d.Spec.Unverified = p
		sb, err := d.Spec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		db, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := byte(1 + p)
		if sb[0] != want || db[0] != want {
			t.Fatalf("%s: spec version %d, deployment version %d, want %d", p, sb[0], db[0], want)
		}
		var s function.Spec
		var back function.Deployment
		if err := s.UnmarshalBinary(sb); err != nil || s != d.Spec {
			t.Fatalf("%s: spec round trip: %v", p, err)
		}
		if err := back.UnmarshalBinary(db); err != nil || back.Spec != d.Spec {
			t.Fatalf("%s: deployment round trip: %v", p, err)
		}
		js, err := json.Marshal(d.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if has := bytes.Contains(js, []byte(`"unverified"`)); has != (p == function.UnverifiedRefuse) {
			t.Fatalf("%s: JSON %s", p, js)
		}
		var sj function.Spec
		if err := json.Unmarshal(js, &sj); err != nil || sj != d.Spec {
			t.Fatalf("%s: JSON round trip: %v", p, err)
		}
	}
	if _, err := function.ParseUnverifiedPolicy("maybe"); !errors.Is(err, function.ErrInvalidSpec) {
		t.Fatalf("unknown policy: %v", err)
	}
	d.Spec.Unverified = 9
	if _, err := d.MarshalBinary(); !errors.Is(err, function.ErrInvalidSpec) {
		t.Fatalf("invalid policy encoded: %v", err)
	}
}
