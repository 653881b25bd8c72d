package figure

import (
	"bytes"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"slices"
	"time"

	"qledger/sharing"
)

// Row is one point of the figure.
type Row struct {
	Mode  string
	N, T  int
	Ratio float64
	// DataBytes is the size of the data split.
	DataBytes int
	// SplitSeconds and RecoverSeconds are medians. Splitting streams to
	// counting writers; recovery streams t randomly chosen encoded shares
	// to a discarding writer.
	SplitSeconds, RecoverSeconds float64
	// Storage is the mean encoded share size (everything a node stores for
	// the item) over the data size; PayloadStorage counts the residues or
	// shard bytes only.
	Storage, PayloadStorage float64
	// PublishedStorage is, for paper mode, what SSDSM stores per node:
	// the residue and the prime, twice the payload. Zero for dispersal.
	PublishedStorage float64
}

// Throughput compares the dispersal mode with AES-GCM + Reed-Solomon alone.
type Throughput struct {
	T, N, Bytes int
	// Seconds are medians; Best are minima.
	SplitSeconds, RecoverSeconds         float64
	BaseSplitSeconds, BaseRecoverSeconds float64
	BestSplit, BestRecover               float64
	BestBaseSplit, BestBaseRecover       float64
}

// SplitRatio is the dispersal split throughput over the baseline's.
func (t Throughput) SplitRatio() float64 { return t.BaseSplitSeconds / t.SplitSeconds }

// RecoverRatio is the dispersal recovery throughput over the baseline's.
func (t Throughput) RecoverRatio() float64 { return t.BaseRecoverSeconds / t.RecoverSeconds }

// Digits is the paper-mode recovery time of a number of the given digits.
type Digits struct {
	N, T    int
	Bytes   int
	Seconds float64 // median of Recover from t shares in memory
}

// countWriter counts bytes and discards them.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Seconds()
}

func minimum(d []time.Duration) float64 { return slices.Min(d).Seconds() }

// measurePoint splits and recovers data repeats times in one mode.
func measurePoint(mode sharing.Scheme, data []byte, t, n, segment, repeats int, rng *rand.Rand) (Row, error) {
	opts := sharing.Options{Scheme: mode, Threshold: t, Shares: n, SegmentSize: segment}
	if mode == sharing.Paper {
		opts.SegmentSize = 0
	}
	row := Row{Mode: mode.String(), N: n, T: t, DataBytes: len(data)}
	var splits, recovers []time.Duration
	var encs [][]byte
	for r := 0; r < repeats; r++ {
		cws := make([]*countWriter, n)
		ws := make([]io.Writer, n)
		for i := range ws {
			cws[i] = &countWriter{}
			ws[i] = cws[i]
		}
		start := time.Now()
		if _, err := sharing.SplitStream(bytes.NewReader(data), ws, opts); err != nil {
			return row, err
		}
		splits = append(splits, time.Since(start))
		var total int64
		for _, c := range cws {
			total += c.n
		}
		row.Storage = float64(total) / float64(n) / float64(len(data))
	}
	shares, _, err := sharing.Split(data, opts)
	if err != nil {
		return row, err
	}
	var payload int
	for _, s := range shares {
		b, err := s.MarshalBinary()
		if err != nil {
			return row, err
		}
		encs = append(encs, b)
		payload += len(s.Payload)
	}
	row.PayloadStorage = float64(payload) / float64(n) / float64(len(data))
	if mode == sharing.Paper {
		row.PublishedStorage = 2 * row.PayloadStorage
	}
	for r := 0; r < repeats; r++ {
		idx := rng.Perm(n)[:t]
		rs := make([]io.Reader, t)
		for i, j := range idx {
			rs[i] = bytes.NewReader(encs[j])
		}
		start := time.Now()
		if _, err := sharing.RecoverStream(io.Discard, rs); err != nil {
			return row, err
		}
		recovers = append(recovers, time.Since(start))
	}
	row.SplitSeconds, row.RecoverSeconds = median(splits), median(recovers)
	return row, nil
}

// digitsNumber returns the big-endian bytes of a random number of exactly
// the given number of decimal digits.
func digitsNumber(digits int, rng *rand.Rand) []byte {
	b := make([]byte, digits)
	b[0] = byte('1' + rng.IntN(9))
	for i := 1; i < digits; i++ {
		b[i] = byte('0' + rng.IntN(10))
	}
	v, _ := new(big.Int).SetString(string(b), 10)
	return v.Bytes()
}

// measureDigits times the in-memory paper-mode recovery of the number.
func measureDigits(num []byte, t, n, repeats int, rng *rand.Rand) (Digits, error) {
	shares, _, err := sharing.Split(num, sharing.Options{Scheme: sharing.Paper, Threshold: t, Shares: n})
	if err != nil {
		return Digits{}, err
	}
	// Warm the moduli and inverses for this subset, as a node would have.
	idx := rng.Perm(n)[:t]
	sub := make([]*sharing.Share, t)
	for i, j := range idx {
		sub[i] = shares[j]
	}
	if _, _, err := sharing.Recover(sub); err != nil {
		return Digits{}, err
	}
	times := make([]time.Duration, repeats)
	for r := range times {
		start := time.Now()
		got, _, err := sharing.Recover(sub)
		times[r] = time.Since(start)
		if err != nil {
			return Digits{}, err
		}
		if !bytes.Equal(got, num) {
			return Digits{}, fmt.Errorf("figure: paper recovery of the %d-byte number is wrong", len(num))
		}
	}
	return Digits{N: n, T: t, Bytes: len(num), Seconds: median(times)}, nil
}

// measureThroughput alternates dispersal and baseline runs.
func measureThroughput(data []byte, t, n, segment, repeats int, rng *rand.Rand) (Throughput, error) {
	res := Throughput{T: t, N: n, Bytes: len(data)}
	opts := sharing.Options{Threshold: t, Shares: n, SegmentSize: segment}
	// Split once to keep the shares for recovery and to learn the segment
	// size chosen, which the baseline then uses too.
	bufs := make([]bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range ws {
		ws[i] = &bufs[i]
	}
	if _, err := sharing.SplitStream(bytes.NewReader(data), ws, opts); err != nil {
		return res, err
	}
	s0, err := sharing.DecodeShare(bufs[0].Bytes())
	if err != nil {
		return res, err
	}
	base, err := NewBaseline(t, n, s0.SegmentSize)
	if err != nil {
		return res, err
	}
	for i := range ws {
		ws[i] = io.Discard
	}
	var sp, bsp, rc, brc []time.Duration
	for r := 0; r < repeats; r++ {
		start := time.Now()
		if err := base.Split(data); err != nil {
			return res, err
		}
		bsp = append(bsp, time.Since(start))
		start = time.Now()
		if _, err := sharing.SplitStream(bytes.NewReader(data), ws, opts); err != nil {
			return res, err
		}
		sp = append(sp, time.Since(start))
	}
	if err := base.Store(data); err != nil {
		return res, err
	}
	for r := 0; r < repeats; r++ {
		idx := rng.Perm(n)[:t]
		start := time.Now()
		if err := base.Recover(idx); err != nil {
			return res, err
		}
		brc = append(brc, time.Since(start))
		rs := make([]io.Reader, t)
		for i, j := range idx {
			rs[i] = bytes.NewReader(bufs[j].Bytes())
		}
		start = time.Now()
		if _, err := sharing.RecoverStream(io.Discard, rs); err != nil {
			return res, err
		}
		rc = append(rc, time.Since(start))
	}
	res.SplitSeconds, res.BaseSplitSeconds = median(sp), median(bsp)
	res.RecoverSeconds, res.BaseRecoverSeconds = median(rc), median(brc)
	res.BestSplit, res.BestBaseSplit = minimum(sp), minimum(bsp)
	res.BestRecover, res.BestBaseRecover = minimum(rc), minimum(brc)
	return res, nil
}
