package sharing_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"qledger/sharing"
)

// raceEnabled is set under the race detector, where big sizes are skipped.
// `make test` runs this package once more without it (FULL_SIZE_PKGS), so
// CI checks them.
var raceEnabled bool

// testData returns n pseudo-random bytes starting with leading zeros, so
// that every round trip also checks that they survive.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for i := 0; i < n && i < 3; i++ {
		b[i] = 0
	}
	return b
}

// detRand is a deterministic randomness source for tests.
type detRand struct{ r *rand.ChaCha8 }

func newDetRand(seed byte) *detRand {
	var s [32]byte
	s[0] = seed
	return &detRand{rand.NewChaCha8(s)}
}

func (d *detRand) Read(p []byte) (int, error) { return d.r.Read(p) }

func split(t *testing.T, data []byte, opts sharing.Options) []*sharing.Share {
	t.Helper()
	shares, _, err := sharing.Split(data, opts)
	if err != nil {
		t.Fatalf("Split(%d bytes, %v t=%d n=%d): %v", len(data), opts.Scheme, opts.Threshold, opts.Shares, err)
	}
	return shares
}

func pick(shares []*sharing.Share, idx []int) []*sharing.Share {
	out := make([]*sharing.Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func encode(t *testing.T, s *sharing.Share) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readers(encs [][]byte) []io.Reader {
	rs := make([]io.Reader, len(encs))
	for i, b := range encs {
		rs[i] = bytes.NewReader(b)
	}
	return rs
}

// clone deep-copies a share so tests can tamper with it.
func clone(s *sharing.Share) *sharing.Share {
	c := *s
	c.Payload = append([]byte(nil), s.Payload...)
	if s.Paper != nil {
		p := *s.Paper
		c.Paper = &p
	}
	if s.AsmuthBloom != nil {
		a := *s.AsmuthBloom
		c.AsmuthBloom = &a
	}
	if s.Dispersal != nil {
		d := *s.Dispersal
		d.KeyShare = append([]byte(nil), d.KeyShare...)
		d.Proof = append([][32]byte(nil), d.Proof...)
		c.Dispersal = &d
	}
	return &c
}

// subsets returns up to limit subsets of size k of 0..n-1: all of them
// when there are few, otherwise the contiguous windows plus random ones.
func subsets(n, k, limit int, seed uint64) [][]int {
	var all [][]int
	var rec func(start int, cur []int)
	count := 0
	rec = func(start int, cur []int) {
		if count > limit {
			return
		}
		if len(cur) == k {
			all = append(all, append([]int(nil), cur...))
			count++
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	if k <= n && binom(n, k) <= limit {
		rec(0, nil)
		return all
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for w := 0; w+k <= n; w += max(1, (n-k)/2) {
		s := make([]int, k)
		for i := range s {
			s[i] = w + i
		}
		all = append(all, s)
	}
	for len(all) < limit {
		all = append(all, r.Perm(n)[:k])
	}
	return all
}

func binom(n, k int) int {
	r := 1
	for i := 1; i <= k; i++ {
		r = r * (n - k + i) / i
		if r > 1<<20 {
			return r
		}
	}
	return r
}
