package sharing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"qledger/sharing"
)

var thresholds = [][2]int{{1, 1}, {2, 3}, {3, 5}, {10, 20}, {15, 20}}

func sizesFor(s sharing.Scheme) []int {
	if s == sharing.AsmuthBloom {
		return []int{1, 2, 16, 32, 33, 100, 255, sharing.MaxSecretSize}
	}
	sizes := []int{1, 2, 15, 16, 17, 100, 959, 4096, 65537}
	if !raceEnabled && !testing.Short() {
		sizes = append(sizes, 1<<20)
	}
	return sizes
}

// TestRoundTrip splits every size with every (t, n) in every mode and
// recovers from several t-subsets, in memory and as streams, and checks
// that every (t-1)-subset is refused.
func TestRoundTrip(t *testing.T) {
	for _, scheme := range []sharing.Scheme{sharing.Paper, sharing.AsmuthBloom, sharing.Dispersal} {
		for _, tn := range thresholds {
			for _, size := range sizesFor(scheme) {
				name := fmt.Sprintf("%v/t=%d,n=%d/%d", scheme, tn[0], tn[1], size)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					roundTrip(t, scheme, tn[0], tn[1], size)
				})
			}
		}
	}
}

func roundTrip(t *testing.T, scheme sharing.Scheme, th, n, size int) {
	data := testData(size, uint64(size*31+th))
	opts := sharing.Options{Scheme: scheme, Threshold: th, Shares: n}
	if size > 2000 && size < 1<<20 {
		opts.SegmentSize = 1000 // several segments, with a short last one
	}
	shares, sum, err := sharing.Split(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != n || sum.Length != int64(size) || sum.Threshold != th || sum.Shares != n || sum.Scheme != scheme {
		t.Fatalf("summary %+v, %d shares", sum, len(shares))
	}
	limit := 6
	if size >= 1<<20 {
		limit = 2
	}
	for _, idx := range subsets(n, th, limit, uint64(size)) {
		got, rsum, err := sharing.Recover(pick(shares, idx))
		if err != nil {
			t.Fatalf("Recover(%v): %v", idx, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("Recover(%v): wrong data", idx)
		}
		if !bytes.Equal(rsum.Digest, sum.Digest) || rsum.Length != sum.Length {
			t.Fatalf("Recover(%v): summary %+v, split %+v", idx, rsum, sum)
		}
	}
	// All n shares, in reverse order.
	rev := make([]*sharing.Share, n)
	for i := range shares {
		rev[n-1-i] = shares[i]
	}
	if got, _, err := sharing.Recover(rev); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Recover(all, reversed): %v", err)
	}
	// Any t-1 shares are refused.
	if th > 1 {
		for _, idx := range subsets(n, th-1, 3, uint64(size)+7) {
			_, _, err := sharing.Recover(pick(shares, idx))
			if !errors.Is(err, sharing.ErrTooFewShares) {
				t.Fatalf("Recover(%v) with t=%d: %v, want ErrTooFewShares", idx, th, err)
			}
		}
	}
	// Streams: SplitStream gives the same encodings' structure, and
	// RecoverStream recovers from the last t of them.
	bufs := make([]bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		ws[i] = &bufs[i]
	}
	ssum, err := sharing.SplitStream(bytes.NewReader(data), ws, opts)
	if err != nil {
		t.Fatal(err)
	}
	encs := make([][]byte, n)
	for i := range bufs {
		encs[i] = bufs[i].Bytes()
		s, err := sharing.DecodeShare(encs[i])
		if err != nil {
			t.Fatalf("DecodeShare(stream share %d): %v", i, err)
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("stream share %d: %v", i, err)
		}
		if s.EncodedLen() != int64(len(encs[i])) {
			t.Fatalf("EncodedLen %d, encoding %d", s.EncodedLen(), len(encs[i]))
		}
	}
	var out bytes.Buffer
	rsum, err := sharing.RecoverStream(&out, readers(encs[n-th:]))
	if err != nil {
		t.Fatalf("RecoverStream: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) || !bytes.Equal(rsum.Digest, ssum.Digest) {
		t.Fatal("RecoverStream: wrong data or digest")
	}
	if th > 1 {
		_, err := sharing.RecoverStream(io.Discard, readers(encs[:th-1]))
		if !errors.Is(err, sharing.ErrTooFewShares) {
			t.Fatalf("RecoverStream(t-1): %v", err)
		}
	}
}

// TestExtremeValues checks data that is all zero bytes and all 0xff bytes:
// the smallest and largest chunk values.
func TestExtremeValues(t *testing.T) {
	for _, scheme := range []sharing.Scheme{sharing.Paper, sharing.AsmuthBloom, sharing.Dispersal} {
		for _, fill := range []byte{0, 0xff} {
			for _, size := range []int{1, 7, 64, 300} {
				data := bytes.Repeat([]byte{fill}, size)
				shares := split(t, data, sharing.Options{Scheme: scheme, Threshold: 3, Shares: 5})
				got, _, err := sharing.Recover(shares[2:])
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%v %#x*%d: %v", scheme, fill, size, err)
				}
			}
		}
	}
}

// TestShareSizes checks what a node stores: about |D|/t in paper and
// dispersal modes, about |D| + (136+t)/8 in asmuth-bloom.
func TestShareSizes(t *testing.T) {
	data := testData(1<<16, 5)
	for _, tc := range []struct {
		scheme   sharing.Scheme
		t, n     int
		min, max float64 // payload / data
	}{
		{sharing.Paper, 15, 20, 1.0 / 15, 1.02 / 15}, // the last chunk is partly empty
		{sharing.Dispersal, 15, 20, 1.0 / 15, 1.01 / 15},
		{sharing.Paper, 3, 5, 1.0 / 3, 1.01 / 3},
		{sharing.Dispersal, 3, 5, 1.0 / 3, 1.01 / 3},
	} {
		shares := split(t, data, sharing.Options{Scheme: tc.scheme, Threshold: tc.t, Shares: tc.n})
		for _, s := range shares {
			r := float64(len(s.Payload)) / float64(len(data))
			if r < tc.min || r > tc.max {
				t.Errorf("%v (%d,%d): payload ratio %.5f", tc.scheme, tc.t, tc.n, r)
			}
			if over := s.EncodedLen() - int64(len(s.Payload)); over > 1024 {
				t.Errorf("%v: %d bytes of encoding overhead", tc.scheme, over)
			}
		}
	}
	secret := testData(100, 1)
	for _, s := range split(t, secret, sharing.Options{Scheme: sharing.AsmuthBloom, Threshold: 3, Shares: 5}) {
		if want := (800 + 136 + 3 + 7) / 8; len(s.Payload) != want {
			t.Errorf("asmuth-bloom payload %d, want %d", len(s.Payload), want)
		}
	}
}

// TestLoss drops up to n-t shares, the highest, the lowest and scattered.
func TestLoss(t *testing.T) {
	data := testData(10_000, 9)
	for _, scheme := range []sharing.Scheme{sharing.Paper, sharing.Dispersal, sharing.AsmuthBloom} {
		d := data
		if scheme == sharing.AsmuthBloom {
			d = data[:200]
		}
		shares := split(t, d, sharing.Options{Scheme: scheme, Threshold: 5, Shares: 9, SegmentSize: 1024})
		for _, keep := range [][]int{{0, 1, 2, 3, 4}, {4, 5, 6, 7, 8}, {0, 2, 4, 6, 8}, {8, 1, 7, 3, 5, 0}} {
			got, _, err := sharing.Recover(pick(shares, keep))
			if err != nil || !bytes.Equal(got, d) {
				t.Fatalf("%v keep %v: %v", scheme, keep, err)
			}
		}
	}
}

// TestSplitDeterministicRand: with the same randomness, Split is
// reproducible; with different randomness, dispersal and asmuth-bloom
// shares differ.
func TestSplitDeterministicRand(t *testing.T) {
	data := testData(3000, 2)
	for _, scheme := range []sharing.Scheme{sharing.Paper, sharing.AsmuthBloom, sharing.Dispersal} {
		d := data
		if scheme == sharing.AsmuthBloom {
			d = data[:64]
		}
		a := split(t, d, sharing.Options{Scheme: scheme, Threshold: 2, Shares: 3, Rand: newDetRand(1)})
		b := split(t, d, sharing.Options{Scheme: scheme, Threshold: 2, Shares: 3, Rand: newDetRand(1)})
		c := split(t, d, sharing.Options{Scheme: scheme, Threshold: 2, Shares: 3, Rand: newDetRand(2)})
		if a[0].Hash != b[0].Hash {
			t.Errorf("%v: same randomness, different shares", scheme)
		}
		same := bytes.Equal(a[0].Payload, c[0].Payload)
		if scheme == sharing.Paper && !same {
			t.Errorf("paper: payload depends on randomness")
		}
		if scheme != sharing.Paper && same {
			t.Errorf("%v: payload does not depend on randomness", scheme)
		}
	}
}

// TestThresholdOne: with t = 1 every share alone recovers the data (in
// dispersal mode Reed-Solomon with one data shard is replication).
func TestThresholdOne(t *testing.T) {
	data := testData(5000, 3)
	for _, s := range []sharing.Scheme{sharing.Paper, sharing.AsmuthBloom, sharing.Dispersal} {
		d := data
		if s == sharing.AsmuthBloom {
			d = data[:64]
		}
		shares := split(t, d, sharing.Options{Scheme: s, Threshold: 1, Shares: 4, SegmentSize: 1000})
		for i := range shares {
			got, _, err := sharing.Recover(shares[i : i+1])
			if err != nil || !bytes.Equal(got, d) {
				t.Fatalf("%v share %d alone: %v", s, i, err)
			}
		}
	}
}

// TestManyReplicas: t = 1 of n = 255 is 255 full replicas; the default
// segment shrinks so that memory stays bounded, and any one share
// recovers.
func TestManyReplicas(t *testing.T) {
	data := testData(300_000, 8)
	shares := split(t, data, sharing.Options{Threshold: 1, Shares: sharing.MaxShares})
	if s := shares[0].SegmentSize; s != 64<<10 {
		t.Fatalf("segment size %d, want 64 KiB", s)
	}
	for _, i := range []int{0, 17, 254} {
		got, _, err := sharing.Recover(shares[i : i+1])
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("share %d: %v", i, err)
		}
	}
}
