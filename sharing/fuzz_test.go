package sharing_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"qledger/sharing"
)

// fuzzSeeds returns valid encodings of every mode, including t = 1
// shares that recover on their own.
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	data := testData(700, 13)
	for _, s := range allSchemes {
		for _, tn := range [][2]int{{1, 1}, {2, 3}} {
			d := data
			if s == sharing.AsmuthBloom {
				d = data[:20]
			}
			shares, _, err := sharing.Split(d, sharing.Options{Scheme: s, Threshold: tn[0], Shares: tn[1], SegmentSize: 300, Rand: newDetRand(9)})
			if err != nil {
				t.Fatal(err)
			}
			for _, sh := range shares {
				b, err := sh.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
		}
	}
	return out
}

// FuzzDecodeShare: decoding never panics; whatever decodes re-encodes to
// the same bytes (the encoding is canonical); Verify, JSON and Recover on
// it never panic.
func FuzzDecodeShare(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte("QSHR"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := sharing.DecodeShare(b)
		if err != nil {
			return
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded share does not encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("encoding is not canonical")
		}
		if s.Verify() != nil {
			return
		}
		if j, err := json.Marshal(s); err == nil {
			var back sharing.Share
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatalf("JSON of a valid share does not decode: %v", err)
			}
		}
		_, _, _ = sharing.Recover([]*sharing.Share{s})
	})
}

// FuzzRecoverStream replaces one of two share streams of a (2,3) split
// with fuzzed bytes: RecoverStream never panics, and when it succeeds the
// output is the original data.
func FuzzRecoverStream(f *testing.F) {
	data := testData(700, 17)
	type set struct {
		encs [][]byte
		data []byte
	}
	var sets []set
	for _, s := range allSchemes {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:24]
		}
		shares, _, err := sharing.Split(d, sharing.Options{Scheme: s, Threshold: 2, Shares: 3, SegmentSize: 300, Rand: newDetRand(4)})
		if err != nil {
			f.Fatal(err)
		}
		var encs [][]byte
		for _, sh := range shares {
			b, _ := sh.MarshalBinary()
			encs = append(encs, b)
		}
		sets = append(sets, set{encs, d})
		f.Add(uint8(len(sets)-1), encs[0])
		f.Add(uint8(len(sets)-1), encs[2])
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		st := sets[int(which)%len(sets)]
		var out bytes.Buffer
		_, err := sharing.RecoverStream(&out, []io.Reader{bytes.NewReader(b), bytes.NewReader(st.encs[1])})
		if err == nil && !bytes.Equal(out.Bytes(), st.data) {
			t.Fatalf("recovered wrong data without an error")
		}
	})
}
