package sharing_test

import (
	"bytes"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"testing"

	"qledger/sharing"
	"qledger/sharing/figure"
)

// Benchmarks. Throughput (MB/s) is over the data size. Split streams to
// discarding writers and recovery streams t encoded shares to a discarding
// writer, so that memory allocation for outputs is not measured; the
// in-memory Split and Recover add a copy of every share or of the data.
//
//	go test -run XXX -bench . -benchtime 20x ./sharing

var benchCases = []struct {
	scheme sharing.Scheme
	size   int
	t, n   int
}{
	{sharing.Paper, 1 << 20, 15, 20},
	{sharing.Paper, 1 << 20, 3, 5},
	{sharing.Dispersal, 1 << 20, 15, 20},
	{sharing.Dispersal, 64 << 20, 15, 20},
	{sharing.Dispersal, 64 << 20, 10, 20},
	{sharing.AsmuthBloom, 32, 15, 20},
	{sharing.AsmuthBloom, 512, 15, 20},
}

func benchName(scheme any, size, t, n int) string {
	return fmt.Sprintf("%v/%s/t=%d,n=%d", scheme, sizeName(size), t, n)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func discards(n int) []io.Writer {
	ws := make([]io.Writer, n)
	for i := range ws {
		ws[i] = io.Discard
	}
	return ws
}

func BenchmarkSplit(b *testing.B) {
	for _, c := range benchCases {
		b.Run(benchName(c.scheme, c.size, c.t, c.n), func(b *testing.B) {
			data := testData(c.size, 1)
			opts := sharing.Options{Scheme: c.scheme, Threshold: c.t, Shares: c.n}
			ws := discards(c.n)
			b.SetBytes(int64(c.size))
			for b.Loop() {
				if _, err := sharing.SplitStream(bytes.NewReader(data), ws, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecover recovers from the last t shares: in dispersal mode that
// is the most parity shards, the slowest case.
func BenchmarkRecover(b *testing.B) {
	for _, c := range benchCases {
		b.Run(benchName(c.scheme, c.size, c.t, c.n), func(b *testing.B) {
			data := testData(c.size, 1)
			shares, _, err := sharing.Split(data, sharing.Options{Scheme: c.scheme, Threshold: c.t, Shares: c.n})
			if err != nil {
				b.Fatal(err)
			}
			encs := make([][]byte, c.t)
			for i, s := range shares[c.n-c.t:] {
				encs[i], _ = s.MarshalBinary()
			}
			b.SetBytes(int64(c.size))
			for b.Loop() {
				if _, err := sharing.RecoverStream(io.Discard, readers(encs)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaseline is AES-256-GCM + Reed-Solomon alone on the same data
// and segments as the dispersal cases; divide to get the ratios.
func BenchmarkBaseline(b *testing.B) {
	for _, c := range benchCases {
		if c.scheme != sharing.Dispersal {
			continue
		}
		data := testData(c.size, 1)
		base, err := figure.NewBaseline(c.t, c.n, sharing.DefaultSegmentSize)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(benchName("split", c.size, c.t, c.n), func(b *testing.B) {
			b.SetBytes(int64(c.size))
			for b.Loop() {
				if err := base.Split(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		if err := base.Store(data); err != nil {
			b.Fatal(err)
		}
		idx := make([]int, c.t)
		for i := range idx {
			idx[i] = c.n - c.t + i
		}
		b.Run(benchName("recover", c.size, c.t, c.n), func(b *testing.B) {
			b.SetBytes(int64(c.size))
			for b.Loop() {
				if err := base.Recover(idx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPaperRecoverDigits is the paper's headline: recovering a
// 1,000-digit number from t shares (in memory, including the hash checks
// and the SHA-256 digest of the result).
func BenchmarkPaperRecoverDigits(b *testing.B) {
	digits := make([]byte, 1000)
	r := rand.New(rand.NewPCG(1, 2))
	digits[0] = '7'
	for i := 1; i < len(digits); i++ {
		digits[i] = byte('0' + r.IntN(10))
	}
	v, _ := new(big.Int).SetString(string(digits), 10)
	num := v.Bytes()
	for _, tn := range [][2]int{{3, 10}, {15, 20}, {38, 50}} {
		b.Run(fmt.Sprintf("t=%d,n=%d", tn[0], tn[1]), func(b *testing.B) {
			shares, _, err := sharing.Split(num, sharing.Options{Scheme: sharing.Paper, Threshold: tn[0], Shares: tn[1]})
			if err != nil {
				b.Fatal(err)
			}
			sub := shares[tn[1]-tn[0]:]
			for b.Loop() {
				if _, _, err := sharing.Recover(sub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
