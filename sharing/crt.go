package sharing

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"
)

// Public moduli.
//
// Both CRT modes use moduli that are fixed and public: a family is an
// infinite deterministic sequence of k-bit moduli, and a share with index i
// uses modulus i of its family, so shares refer to it by index instead of
// storing it. Every machine derives the same sequence:
//
//	candidate(kind, k, c) = the first k bits of
//	    SHA-256(domain || kind || uint16(k) || uint64(c) || uint32(0)) ||
//	    SHA-256(domain || kind || uint16(k) || uint64(c) || uint32(1)) || ...
//	    with bit k-1 and bit 0 set (so it is odd and exactly k bits long),
//
// where domain is "qledger/sharing/moduli/v1" and c = 0, 1, 2, ... counts
// candidates. Prime families (paper mode, as in SSDSM) keep the candidates
// that pass math/big's Baillie-PSW test (ProbablyPrime(0), deterministic) and
// differ from all earlier members. Coprime families (Asmuth-Bloom) keep the
// candidates coprime to all earlier members; primality is not needed, and
// primes of several thousand bits would take minutes to find. A family is
// generated lazily, once per process, and cached.

const modulusDomain = "qledger/sharing/moduli/v1"

const (
	kindPrime   byte = 'p'
	kindCoprime byte = 'c'
)

type familyKey struct {
	kind byte
	bits int
}

// family is one cached modulus sequence. Its members are never modified
// after creation and may be shared.
type family struct {
	kind byte
	bits int

	mu    sync.Mutex
	mods  []*big.Int
	next  uint64
	plans map[string]*garner
}

var families sync.Map // familyKey -> *family

func getFamily(kind byte, bits int) *family {
	k := familyKey{kind, bits}
	if f, ok := families.Load(k); ok {
		return f.(*family)
	}
	f, _ := families.LoadOrStore(k, &family{kind: kind, bits: bits, plans: map[string]*garner{}})
	return f.(*family)
}

// moduli returns the first n members of the family. The caller must not
// modify them.
func (f *family) moduli(n int) []*big.Int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.mods) < n {
		f.mods = append(f.mods, f.generate())
	}
	return f.mods[:n:n]
}

func (f *family) generate() *big.Int {
	one := big.NewInt(1)
	var g big.Int
	for {
		c := modulusCandidate(f.kind, f.bits, f.next)
		f.next++
		ok := true
		switch f.kind {
		case kindPrime:
			if !c.ProbablyPrime(0) {
				continue
			}
			for _, m := range f.mods {
				if m.Cmp(c) == 0 {
					ok = false
					break
				}
			}
		default:
			for _, m := range f.mods {
				if g.GCD(nil, nil, m, c).Cmp(one) != 0 {
					ok = false
					break
				}
			}
		}
		if ok {
			return c
		}
	}
}

func modulusCandidate(kind byte, bits int, counter uint64) *big.Int {
	nbytes := (bits + 7) / 8
	buf := make([]byte, 0, nbytes+sha256.Size)
	var in [len(modulusDomain) + 1 + 2 + 8 + 4]byte
	copy(in[:], modulusDomain)
	p := len(modulusDomain)
	in[p] = kind
	binary.BigEndian.PutUint16(in[p+1:], uint16(bits))
	binary.BigEndian.PutUint64(in[p+3:], counter)
	for block := uint32(0); len(buf) < nbytes; block++ {
		binary.BigEndian.PutUint32(in[p+11:], block)
		h := sha256.Sum256(in[:])
		buf = append(buf, h[:]...)
	}
	buf = buf[:nbytes]
	if extra := nbytes*8 - bits; extra > 0 {
		buf[0] &= 0xff >> extra
	}
	c := new(big.Int).SetBytes(buf)
	c.SetBit(c, bits-1, 1)
	c.SetBit(c, 0, 1)
	return c
}

// plan returns the Garner plan for the moduli with the given indices, in
// that order, cached per index list (a node recovers from the same groups
// again and again).
func (f *family) plan(idx []int) (*garner, error) {
	key := make([]byte, len(idx))
	for i, j := range idx {
		key[i] = byte(j)
	}
	mods := f.moduli(maxIndex(idx) + 1)
	f.mu.Lock()
	g, ok := f.plans[string(key)]
	f.mu.Unlock()
	if ok {
		return g, nil
	}
	m := make([]*big.Int, len(idx))
	for i, j := range idx {
		m[i] = mods[j]
	}
	g, err := newGarner(m)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if len(f.plans) >= maxPlans {
		clear(f.plans)
	}
	f.plans[string(key)] = g
	f.mu.Unlock()
	return g, nil
}

// maxPlans bounds the plan cache of one family.
const maxPlans = 256

func maxIndex(idx []int) int {
	m := 0
	for _, j := range idx {
		m = max(m, j)
	}
	return m
}

// garner recombines residues for a fixed list of pairwise coprime moduli
// m_0..m_{t-1} with Garner's mixed-radix algorithm, constants precomputed:
//
//	c_j  = (m_0 ... m_{j-1})^-1 mod m_j
//	p_ji = (m_0 ... m_{i-1}) mod m_j                      for i < j
//	v_0  = r_0
//	v_j  = (r_j - sum_{i<j} v_i p_ji) c_j mod m_j
//	y    = v_0 + v_1 m_0 + v_2 m_0 m_1 + ...   (Horner's rule)
//
// which gives the unique y < m_0 ... m_{t-1} with y = r_j mod m_j, since
// y mod m_j = sum_{i<j} v_i p_ji + v_j (m_0 ... m_{j-1}). Only k-bit and
// 2k-bit numbers are multiplied and reduced (two reductions per modulus),
// plus O(t) growing multiplications at the end, instead of the textbook
// sum over M/m_i with full-size numbers and t modular inverses of them.
type garner struct {
	m []*big.Int
	c []*big.Int   // c[j]; c[0] unused
	p [][]*big.Int // p[j][i] for i < j
}

// newGarner precomputes the constants: t(t-1)/2 modular products and t-1
// modular inverses of k-bit numbers.
func newGarner(m []*big.Int) (*garner, error) {
	t := len(m)
	g := &garner{m: m, c: make([]*big.Int, t), p: make([][]*big.Int, t)}
	for j := 1; j < t; j++ {
		row := make([]*big.Int, j)
		acc := big.NewInt(1)
		for i := 0; i < j; i++ {
			row[i] = new(big.Int).Set(acc)
			acc.Mul(acc, m[i]).Mod(acc, m[j])
		}
		g.p[j] = row
		g.c[j] = new(big.Int).ModInverse(acc, m[j])
		if g.c[j] == nil {
			return nil, fmt.Errorf("%w: modulus %d is not coprime to the ones before it", ErrInconsistent, j)
		}
	}
	return g, nil
}

// garnerScratch holds reusable temporaries; one per goroutine.
type garnerScratch struct {
	v              []*big.Int
	acc, x, q, tmp big.Int
}

func newGarnerScratch(t int) *garnerScratch {
	s := &garnerScratch{v: make([]*big.Int, t)}
	for i := range s.v {
		s.v[i] = new(big.Int)
	}
	return s
}

// combine sets y to the CRT solution of r (r[j] < m[j] is required) and
// returns it. It does not allocate in steady state.
func (g *garner) combine(y *big.Int, r []*big.Int, s *garnerScratch) *big.Int {
	t := len(g.m)
	s.v[0].Set(r[0])
	for j := 1; j < t; j++ {
		s.acc.SetInt64(0)
		for i, p := range g.p[j] {
			s.tmp.Mul(s.v[i], p)
			s.acc.Add(&s.acc, &s.tmp)
		}
		s.x.Sub(r[j], &s.acc)
		s.q.QuoRem(&s.x, g.m[j], &s.tmp)
		if s.tmp.Sign() < 0 {
			s.tmp.Add(&s.tmp, g.m[j])
		}
		s.x.Mul(&s.tmp, g.c[j])
		s.q.QuoRem(&s.x, g.m[j], s.v[j])
	}
	y.Set(s.v[t-1])
	for j := t - 2; j >= 0; j-- {
		y.Mul(y, g.m[j])
		y.Add(y, s.v[j])
	}
	return y
}
