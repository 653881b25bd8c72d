package shard

import (
	"bytes"
	"errors"
	"testing"
)

func sample() Record {
	r := Record{DataID: "item-1", Index: 2, Shares: 5, Threshold: 3, Scheme: "dispersal", Segment: 0, Segments: 1,
		ShareSize: 10, Uploader: "alice", Description: "report", Digest: []byte{1, 2, 3}, Readers: []string{"alice", "bob"}, Bytes: []byte("0123456789")}
	r.ShareHash[0] = 7
	return r
}

func TestRoundTrip(t *testing.T) {
	r := sample()
	got, err := Decode(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), r.Encode()) || got.DataID != r.DataID || len(got.Readers) != 2 {
		t.Fatalf("round trip changed the record: %+v", got)
	}
	if !got.CanRead("bob") || got.CanRead("eve") {
		t.Fatal("reader list not enforced")
	}
	open := sample()
	open.Readers = nil
	if !open.CanRead("anyone") {
		t.Fatal("an empty reader list must allow anyone")
	}
}

func TestDecodeRejects(t *testing.T) {
	smp := sample()
	enc := smp.Encode()
	for i := 0; i < len(enc); i++ {
		if _, err := Decode(enc[:i]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
	}
	if _, err := Decode(append(append([]byte(nil), enc...), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte(nil), enc...)
	bad[0] = 9
	if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*Record){
		"bad id":            func(r *Record) { r.DataID = "has space" },
		"empty id":          func(r *Record) { r.DataID = "" },
		"threshold above n": func(r *Record) { r.Threshold = 6 },
		"threshold zero":    func(r *Record) { r.Threshold = 0 },
		"index out":         func(r *Record) { r.Index = 5 },
		"segment out":       func(r *Record) { r.Segment = 1 },
		"size mismatch":     func(r *Record) { r.ShareSize = 11 },
		"empty bytes":       func(r *Record) { r.Bytes = nil },
		"long description":  func(r *Record) { r.Description = string(make([]byte, MaxDescriptionLen+1)) },
		"empty reader":      func(r *Record) { r.Readers = []string{""} },
		"no scheme":         func(r *Record) { r.Scheme = "" },
	}
	for name, mod := range cases {
		r := sample()
		mod(&r)
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSplitSegments(t *testing.T) {
	share := make([]byte, 2*MaxSegmentBytes+5)
	for i := range share {
		share[i] = byte(i)
	}
	tmpl := sample()
	recs := Split(tmpl, share)
	if len(recs) != 3 {
		t.Fatalf("%d segments", len(recs))
	}
	var joined []byte
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		joined = append(joined, r.Bytes...)
	}
	if !bytes.Equal(joined, share) {
		t.Fatal("segments do not reassemble the share")
	}
}

func FuzzDecode(f *testing.F) {
	smp := sample()
	f.Add(smp.Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatal("accepted a non-canonical record")
		}
	})
}
