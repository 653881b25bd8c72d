package sharing_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"qledger/sharing"
)

var allSchemes = []sharing.Scheme{sharing.Paper, sharing.AsmuthBloom, sharing.Dispersal}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts sharing.Options
		want error
	}{
		{sharing.Options{Threshold: 3, Shares: 2}, sharing.ErrThreshold},
		{sharing.Options{Threshold: 0, Shares: 2}, sharing.ErrThreshold},
		{sharing.Options{Threshold: -1, Shares: 2}, sharing.ErrThreshold},
		{sharing.Options{Threshold: 1, Shares: 0}, sharing.ErrShareCount},
		{sharing.Options{Threshold: 1, Shares: sharing.MaxShares + 1}, sharing.ErrShareCount},
		{sharing.Options{Threshold: 1, Shares: 2, SegmentSize: sharing.MinSegmentSize - 1}, sharing.ErrSegmentSize},
		{sharing.Options{Threshold: 1, Shares: 2, SegmentSize: sharing.MaxSegmentSize + 1}, sharing.ErrSegmentSize},
		{sharing.Options{Scheme: 9, Threshold: 1, Shares: 2}, sharing.ErrUnknownScheme},
		{sharing.Options{Threshold: sharing.MaxShares, Shares: sharing.MaxShares}, nil},
		{sharing.DefaultOptions(2, 3), nil},
	} {
		err := tc.opts.Validate()
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%+v: %v, want %v", tc.opts, err, tc.want)
		}
		if tc.want != nil {
			if _, _, err := sharing.Split([]byte("x"), tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("Split %+v: %v, want %v", tc.opts, err, tc.want)
			}
		}
	}
	if err := sharing.DefaultOptions(2, 3).Validate(); err != nil {
		t.Fatal(err)
	}
	if sharing.DefaultOptions(2, 3).Scheme != sharing.Dispersal {
		t.Fatal("default scheme is not dispersal")
	}
}

func TestParseScheme(t *testing.T) {
	for _, s := range allSchemes {
		got, err := sharing.ParseScheme(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScheme(%q) = %v, %v", s, got, err)
		}
	}
	if got, err := sharing.ParseScheme(""); err != nil || got != sharing.Dispersal {
		t.Errorf("ParseScheme(\"\") = %v, %v", got, err)
	}
	if _, err := sharing.ParseScheme("shamir"); !errors.Is(err, sharing.ErrUnknownScheme) {
		t.Errorf("ParseScheme(shamir): %v", err)
	}
	var s sharing.Scheme
	if err := s.UnmarshalText(nil); !errors.Is(err, sharing.ErrUnknownScheme) {
		t.Errorf("UnmarshalText(empty): %v", err)
	}
	if _, err := sharing.Scheme(0).MarshalText(); !errors.Is(err, sharing.ErrUnknownScheme) {
		t.Errorf("MarshalText(0): %v", err)
	}
	if sharing.Scheme(7).String() != "scheme(7)" {
		t.Error(sharing.Scheme(7).String())
	}
}

func TestEmptyData(t *testing.T) {
	for _, s := range allSchemes {
		opts := sharing.Options{Scheme: s, Threshold: 2, Shares: 3}
		if _, _, err := sharing.Split(nil, opts); !errors.Is(err, sharing.ErrEmptyData) {
			t.Errorf("%v Split(nil): %v", s, err)
		}
		if _, _, err := sharing.Split([]byte{}, opts); !errors.Is(err, sharing.ErrEmptyData) {
			t.Errorf("%v Split(empty): %v", s, err)
		}
		ws := []io.Writer{io.Discard, io.Discard, io.Discard}
		if _, err := sharing.SplitStream(strings.NewReader(""), ws, opts); !errors.Is(err, sharing.ErrEmptyData) {
			t.Errorf("%v SplitStream(empty): %v", s, err)
		}
	}
}

func TestSecretTooLarge(t *testing.T) {
	opts := sharing.Options{Scheme: sharing.AsmuthBloom, Threshold: 2, Shares: 3}
	if _, _, err := sharing.Split(make([]byte, sharing.MaxSecretSize+1), opts); !errors.Is(err, sharing.ErrDataTooLarge) {
		t.Fatalf("%v", err)
	}
}

func TestWriterCount(t *testing.T) {
	_, err := sharing.SplitStream(strings.NewReader("x"), []io.Writer{io.Discard}, sharing.DefaultOptions(2, 3))
	if !errors.Is(err, sharing.ErrShareCount) {
		t.Fatal(err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	m := min(len(p), f.n)
	f.n -= m
	return m, nil
}

// TestStreamIOErrors: a failing writer or reader ends the split with its
// error, wrapped, for every mode and at several points.
func TestStreamIOErrors(t *testing.T) {
	data := testData(5000, 4)
	for _, s := range allSchemes {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:100]
		}
		opts := sharing.Options{Scheme: s, Threshold: 2, Shares: 3, SegmentSize: 512}
		afters, reads := []int{0, 1, 2, 5, 20}, []int{0, 10, 600, 3000}
		if s == sharing.AsmuthBloom { // one frame: five writes per share
			afters, reads = []int{0, 1, 2, 3, 4}, []int{0, 10, 99}
		}
		for _, after := range afters {
			ws := []io.Writer{io.Discard, &failWriter{after: after}, io.Discard}
			_, err := sharing.SplitStream(bytes.NewReader(d), ws, opts)
			if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "share 1") {
				t.Errorf("%v writer fails after %d: %v", s, after, err)
			}
		}
		for _, n := range reads {
			_, err := sharing.SplitStream(&failReader{n: n}, []io.Writer{io.Discard, io.Discard, io.Discard}, opts)
			if err == nil || !strings.Contains(err.Error(), "connection reset") {
				t.Errorf("%v reader fails after %d: %v", s, n, err)
			}
		}
		shares := split(t, d, opts)
		encs := [][]byte{encode(t, shares[0]), encode(t, shares[1])}
		if _, err := sharing.RecoverStream(&failWriter{}, readers(encs)); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%v RecoverStream to failing writer: %v", s, err)
		}
		rs := []io.Reader{io.MultiReader(bytes.NewReader(encs[0][:60]), &failReader{}), bytes.NewReader(encs[1])}
		if _, err := sharing.RecoverStream(io.Discard, rs); err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%v RecoverStream from failing reader: %v", s, err)
		}
	}
}

func TestRecoverBadSets(t *testing.T) {
	for _, s := range allSchemes {
		opts := sharing.Options{Scheme: s, Threshold: 2, Shares: 4}
		a := split(t, []byte("the same data"), opts)
		b := split(t, []byte("the same data"), opts)
		cases := []struct {
			name   string
			shares []*sharing.Share
			want   error
		}{
			{"none", nil, sharing.ErrTooFewShares},
			{"one of two", a[:1], sharing.ErrTooFewShares},
			{"mixed splits", []*sharing.Share{a[0], b[1]}, sharing.ErrMixedShares},
			{"duplicate index", []*sharing.Share{a[1], a[1]}, sharing.ErrDuplicateIndex},
			{"duplicate index among enough", []*sharing.Share{a[0], a[2], a[0]}, sharing.ErrDuplicateIndex},
			{"nil share", []*sharing.Share{a[0], nil}, sharing.ErrMalformed},
		}
		for _, tc := range cases {
			_, _, err := sharing.Recover(tc.shares)
			if !errors.Is(err, tc.want) {
				t.Errorf("%v %s: %v, want %v", s, tc.name, err, tc.want)
			}
		}
		// The error for too few shares says how many were given and needed.
		_, _, err := sharing.Recover(a[3:])
		if err == nil || !strings.Contains(err.Error(), "1 given") || !strings.Contains(err.Error(), "2 needed") {
			t.Errorf("%v: too-few message %q", s, err)
		}
		// Mixed and duplicate sets as streams.
		encA := [][]byte{encode(t, a[0]), encode(t, a[1])}
		encB := [][]byte{encode(t, b[1])}
		if _, err := sharing.RecoverStream(io.Discard, readers([][]byte{encA[0], encB[0]})); !errors.Is(err, sharing.ErrMixedShares) {
			t.Errorf("%v stream mixed: %v", s, err)
		}
		if _, err := sharing.RecoverStream(io.Discard, readers([][]byte{encA[0], encA[0]})); !errors.Is(err, sharing.ErrDuplicateIndex) {
			t.Errorf("%v stream duplicate: %v", s, err)
		}
		if _, err := sharing.RecoverStream(io.Discard, nil); !errors.Is(err, sharing.ErrTooFewShares) {
			t.Errorf("%v stream none: %v", s, err)
		}
	}
}

// TestTampered flips one bit of one share: Verify and Recover name the
// share's index and the share is not used; the remaining shares still
// recover. RecoverStream detects it too.
func TestTampered(t *testing.T) {
	data := testData(3000, 6)
	for _, s := range allSchemes {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:50]
		}
		shares := split(t, d, sharing.Options{Scheme: s, Threshold: 3, Shares: 5, SegmentSize: 1000})
		for _, where := range []string{"payload", "length", "hash", "split id", "params"} {
			bad := clone(shares[2])
			switch where {
			case "payload":
				bad.Payload[len(bad.Payload)/2] ^= 0x10
			case "length":
				// Asmuth-Bloom ties the modulus to the length, so a
				// changed length is malformed there; flip a residue bit.
				if s == sharing.AsmuthBloom {
					bad.Payload[0] ^= 1
				} else {
					bad.Length--
				}
			case "hash":
				bad.Hash[31] ^= 1
			case "split id":
				bad.SplitID[0] ^= 1
			case "params":
				switch s {
				case sharing.Paper:
					bad.Paper.Digest[0] ^= 1
				case sharing.AsmuthBloom:
					bad.Payload[len(bad.Payload)-1] ^= 1
				case sharing.Dispersal:
					bad.Dispersal.KeyShare[5] ^= 1
				}
			}
			err := bad.Verify()
			var se *sharing.ShareError
			if !errors.As(err, &se) || se.Index != 2 || !(errors.Is(err, sharing.ErrTampered) || errors.Is(err, sharing.ErrMalformed)) {
				t.Errorf("%v %s: Verify = %v", s, where, err)
				continue
			}
			_, _, err = sharing.Recover([]*sharing.Share{shares[0], shares[1], bad, shares[3]})
			if !errors.As(err, &se) || se.Index != 2 {
				t.Errorf("%v %s: Recover = %v, want error naming share 2", s, where, err)
			}
			// Drop the bad share and recover from the others.
			got, _, err := sharing.Recover([]*sharing.Share{shares[0], shares[1], shares[3]})
			if err != nil || !bytes.Equal(got, d) {
				t.Errorf("%v %s: without the bad share: %v", s, where, err)
			}
			// As a stream, among the t used.
			if enc, err := bad.MarshalBinary(); err == nil {
				_, err = sharing.RecoverStream(io.Discard, readers([][]byte{encode(t, shares[0]), encode(t, shares[1]), enc}))
				if err == nil {
					t.Errorf("%v %s: RecoverStream accepted a tampered share", s, where)
				}
			}
		}
	}
}

// rehash makes a tampered share's hash consistent again, as an attacker
// who controls a node could.
func rehash(t *testing.T, s *sharing.Share) {
	t.Helper()
	s.Hash = sharing.RecomputeHash(s)
}

// TestTamperedRehashed: a share altered and re-hashed passes Verify. What
// catches it depends on the mode, and this test states it:
//   - dispersal: the Merkle proof or the AES-GCM tags (ErrAuthentication);
//   - paper: the SHA-256 digest of the result (ErrAuthentication), or a
//     chunk value out of range (ErrInconsistent) before that;
//   - asmuth-bloom: with t+1 shares, the extra one disagrees
//     (ErrInconsistent); with exactly t shares nothing can, and the result
//     is wrong or out of range.
func TestTamperedRehashed(t *testing.T) {
	data := testData(3000, 8)
	for _, s := range allSchemes {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:40]
		}
		shares := split(t, d, sharing.Options{Scheme: s, Threshold: 3, Shares: 5, SegmentSize: 1000})
		bad := clone(shares[1])
		bad.Payload[3] ^= 0x01
		rehash(t, bad)
		if err := bad.Verify(); err != nil {
			t.Fatalf("%v: re-hashed share fails Verify: %v", s, err)
		}
		set := []*sharing.Share{shares[0], bad, shares[2]}
		got, _, err := sharing.Recover(set)
		switch s {
		case sharing.Dispersal:
			if !errors.Is(err, sharing.ErrAuthentication) {
				t.Errorf("%v: %v, want ErrAuthentication", s, err)
			}
		case sharing.Paper:
			if !errors.Is(err, sharing.ErrAuthentication) && !errors.Is(err, sharing.ErrInconsistent) {
				t.Errorf("%v: %v, want ErrAuthentication or ErrInconsistent", s, err)
			}
		case sharing.AsmuthBloom:
			if err == nil && bytes.Equal(got, d) {
				t.Errorf("asmuth-bloom: tampered share gave the right secret")
			}
			_, _, err = sharing.Recover(append(set, shares[4]))
			if !errors.Is(err, sharing.ErrInconsistent) {
				t.Errorf("asmuth-bloom with t+1 shares: %v, want ErrInconsistent", err)
			}
		}
		// Streams.
		encs := [][]byte{encode(t, shares[0]), encode(t, bad), encode(t, shares[2])}
		_, err = sharing.RecoverStream(io.Discard, readers(encs))
		if s != sharing.AsmuthBloom && !errors.Is(err, sharing.ErrAuthentication) && !errors.Is(err, sharing.ErrInconsistent) {
			t.Errorf("%v stream: %v, want ErrAuthentication or ErrInconsistent", s, err)
		}
	}
}

// TestDispersalRehashedTrailer: an attacker who rewrites a dispersal
// share's trailer (root, tag, proof) and re-hashes it is caught by the
// other shares (ErrMixedShares) or, if all are rewritten alike, by the
// manifest tag.
func TestDispersalRehashedTrailer(t *testing.T) {
	shares := split(t, testData(5000, 3), sharing.Options{Threshold: 2, Shares: 3, SegmentSize: 1000})
	bad := clone(shares[0])
	bad.Dispersal.Root[0] ^= 1
	rehash(t, bad)
	if _, _, err := sharing.Recover([]*sharing.Share{bad, shares[1]}); !errors.Is(err, sharing.ErrMixedShares) {
		t.Errorf("root changed in one share: %v", err)
	}
	if _, err := sharing.RecoverStream(io.Discard, readers([][]byte{encode(t, bad), encode(t, shares[1])})); !errors.Is(err, sharing.ErrMixedShares) {
		t.Errorf("stream, root changed in one share: %v", err)
	}
	// Same change in both: the proofs no longer lead to the root.
	bad2 := clone(shares[1])
	bad2.Dispersal.Root = bad.Dispersal.Root
	rehash(t, bad2)
	if _, _, err := sharing.Recover([]*sharing.Share{bad, bad2}); !errors.Is(err, sharing.ErrAuthentication) {
		t.Errorf("root changed in both: %v", err)
	}
	// Tag changed in both: the manifest does not authenticate.
	t1, t2 := clone(shares[0]), clone(shares[1])
	t1.Dispersal.Tag[0] ^= 1
	t2.Dispersal.Tag[0] ^= 1
	rehash(t, t1)
	rehash(t, t2)
	if _, _, err := sharing.Recover([]*sharing.Share{t1, t2}); !errors.Is(err, sharing.ErrAuthentication) {
		t.Errorf("tag changed in both: %v", err)
	}
	if _, err := sharing.RecoverStream(io.Discard, readers([][]byte{encode(t, t1), encode(t, t2)})); !errors.Is(err, sharing.ErrAuthentication) {
		t.Errorf("stream, tag changed in both: %v", err)
	}
	// A wrong key share is in the hashed header, so in memory its Merkle
	// proof fails first. A stream uses the key before the proofs arrive:
	// the key comes out out of range (ErrInconsistent) or wrong, and then
	// the first segment fails to authenticate.
	k := clone(shares[0])
	k.Dispersal.KeyShare[len(k.Dispersal.KeyShare)-1] ^= 1
	rehash(t, k)
	if _, _, err := sharing.Recover([]*sharing.Share{k, shares[1]}); !errors.Is(err, sharing.ErrAuthentication) {
		t.Errorf("wrong key share: %v", err)
	}
	_, err := sharing.RecoverStream(io.Discard, readers([][]byte{encode(t, k), encode(t, shares[1])}))
	if !errors.Is(err, sharing.ErrAuthentication) && !errors.Is(err, sharing.ErrInconsistent) {
		t.Errorf("stream, wrong key share: %v", err)
	}
	// A key share above its modulus is refused as such.
	k2 := clone(shares[0])
	for i := range k2.Dispersal.KeyShare {
		k2.Dispersal.KeyShare[i] = 0xff
	}
	rehash(t, k2)
	_, err = sharing.RecoverStream(io.Discard, readers([][]byte{encode(t, k2), encode(t, shares[1])}))
	if !errors.Is(err, sharing.ErrInconsistent) {
		t.Errorf("key share above its modulus: %v", err)
	}
}

// TestPaperResidueOutOfRange: a re-hashed paper share whose residue is not
// below its modulus is refused as inconsistent, never reduced silently.
func TestPaperResidueOutOfRange(t *testing.T) {
	shares := split(t, testData(500, 2), sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3})
	bad := clone(shares[0])
	for i := range bad.Payload[:bad.Paper.ModulusBits/8] {
		bad.Payload[i] = 0xff
	}
	rehash(t, bad)
	if _, _, err := sharing.Recover([]*sharing.Share{bad, shares[1]}); !errors.Is(err, sharing.ErrInconsistent) {
		t.Errorf("%v", err)
	}
}

// failRand fails after n bytes.
type failRand struct{ n int }

func (f *failRand) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("entropy exhausted")
	}
	m := min(len(p), f.n)
	f.n -= m
	return m, nil
}

// TestRandFailure: a failing randomness source ends the split with its
// error at every point where randomness is read.
func TestRandFailure(t *testing.T) {
	for _, s := range allSchemes {
		for _, n := range []int{0, 16, 48, 55, 60} {
			opts := sharing.Options{Scheme: s, Threshold: 2, Shares: 3, Rand: &failRand{n: n}}
			_, _, err := sharing.Split([]byte("secret"), opts)
			if s == sharing.Paper && n >= 16 {
				if err != nil {
					t.Errorf("paper needs only the split ID: %v", err)
				}
				continue
			}
			if s == sharing.AsmuthBloom && n >= 55 {
				continue // enough for the split ID and alpha
			}
			if err == nil || !strings.Contains(err.Error(), "entropy exhausted") {
				t.Errorf("%v, failing after %d bytes: %v", s, n, err)
			}
		}
	}
}

// TestMixedFields: shares with the same split ID that differ in any
// parameter are refused with ErrMixedShares naming the field. A shared
// deterministic randomness source gives both splits the same split ID.
func TestMixedFields(t *testing.T) {
	data := testData(3000, 21)
	other := append([]byte(nil), data...)
	other[100] ^= 1
	splitWith := func(d []byte, o sharing.Options) []*sharing.Share {
		o.Rand = newDetRand(77)
		return split(t, d, o)
	}
	for _, tc := range []struct {
		name string
		a, b []*sharing.Share
		want string
	}{
		{"scheme", splitWith(data[:32], sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3}),
			splitWith(data[:32], sharing.Options{Scheme: sharing.Dispersal, Threshold: 2, Shares: 3}), "version or scheme"},
		{"n", splitWith(data, sharing.Options{Threshold: 2, Shares: 3}),
			splitWith(data, sharing.Options{Threshold: 2, Shares: 4}), "t or n"},
		{"segment", splitWith(data, sharing.Options{Threshold: 2, Shares: 3, SegmentSize: 1000}),
			splitWith(data, sharing.Options{Threshold: 2, Shares: 3, SegmentSize: 2000}), "segment size"},
		{"paper parameters", splitWith(data[:100], sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3}),
			// Paper parameters follow from (length, t, segment size), so
			// the segment size differs first.
			splitWith(data[:200], sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3}), "segment size"},
		{"paper digest", splitWith(data, sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3}),
			splitWith(other, sharing.Options{Scheme: sharing.Paper, Threshold: 2, Shares: 3}), "digest"},
		{"asmuth-bloom parameters", splitWith(data[:10], sharing.Options{Scheme: sharing.AsmuthBloom, Threshold: 2, Shares: 3}),
			splitWith(data[:11], sharing.Options{Scheme: sharing.AsmuthBloom, Threshold: 2, Shares: 3}), "asmuth-bloom parameters"},
		{"length", splitWith(data, sharing.Options{Threshold: 2, Shares: 3, SegmentSize: 1000}),
			splitWith(data[:2999], sharing.Options{Threshold: 2, Shares: 3, SegmentSize: 1000}), "length"},
		{"root", splitWith(data, sharing.Options{Threshold: 2, Shares: 3}),
			splitWith(other, sharing.Options{Threshold: 2, Shares: 3}), "Merkle root"},
	} {
		if tc.a[0].SplitID != tc.b[1].SplitID {
			t.Fatalf("%s: split IDs differ", tc.name)
		}
		_, _, err := sharing.Recover([]*sharing.Share{tc.a[0], tc.b[1]})
		if !errors.Is(err, sharing.ErrMixedShares) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Dispersal parameters: same split ID and key, another nonce prefix.
	a := split(t, data, sharing.Options{Threshold: 2, Shares: 3})
	b := clone(a[1])
	b.SplitID = a[0].SplitID
	b.Dispersal.NoncePrefix[0] ^= 1
	rehash(t, b)
	if _, _, err := sharing.Recover([]*sharing.Share{a[0], b}); !errors.Is(err, sharing.ErrMixedShares) || !strings.Contains(err.Error(), "dispersal parameters") {
		t.Errorf("nonce prefix: %v", err)
	}
}

func TestShardHash(t *testing.T) {
	shares := split(t, testData(500, 1), sharing.Options{Threshold: 2, Shares: 3})
	h0, err := shares[0].ShardHash()
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := shares[1].ShardHash()
	if h0 == h1 || h0 == shares[0].Hash {
		t.Fatal("shard hashes not distinct from each other and from the share hash")
	}
	var s sharing.Share
	if err := s.UnmarshalBinary([]byte("QSHR")); !errors.Is(err, sharing.ErrMalformed) {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
}
