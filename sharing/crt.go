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

	mu   sync.Mutex
	mods []*big.Int
	next uint64
	inv  map[[2]int]*big.Int // inv[{i,j}] = mods[i]^-1 mod mods[j]
}

var families sync.Map // familyKey -> *family

func getFamily(kind byte, bits int) *family {
	k := familyKey{kind, bits}
	if f, ok := families.Load(k); ok {
		return f.(*family)
	}
	f, _ := families.LoadOrStore(k, &family{kind: kind, bits: bits, inv: map[[2]int]*big.Int{}})
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

// inverse returns mods[i]^-1 mod mods[j], computing it once. Both moduli
// are k-bit numbers, so ModInverse is cheap.
func (f *family) inverse(i, j int) (*big.Int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.inv[[2]int{i, j}]; ok {
		return v, nil
	}
	if i >= len(f.mods) || j >= len(f.mods) {
		return nil, fmt.Errorf("sharing: modulus index out of range")
	}
	v := new(big.Int).ModInverse(f.mods[i], f.mods[j])
	if v == nil {
		return nil, fmt.Errorf("sharing: moduli %d and %d are not coprime", i, j)
	}
	f.inv[[2]int{i, j}] = v
	return v, nil
}

// garner recombines residues with Garner's mixed-radix algorithm for a
// fixed list of moduli m_0..m_{t-1}, with the inverses precomputed:
//
//	v_0 = r_0
//	v_j = (...((r_j - v_0) c_0j - v_1) c_1j - ... - v_{j-1}) c_{j-1,j} mod m_j,
//	      where c_ij = m_i^-1 mod m_j
//	y   = v_0 + v_1 m_0 + v_2 m_0 m_1 + ... (evaluated by Horner's rule)
//
// which gives the unique y < m_0 ... m_{t-1} with y = r_j mod m_j. Only
// products of a k-bit and a 2k-bit number are reduced, so the cost is
// O(t^2) small operations plus O(t) growing multiplications, instead of the
// textbook sum over M/m_i with full-size numbers.
type garner struct {
	m   []*big.Int
	inv [][]*big.Int // inv[j][i] = c_ij for i < j
}

func newGarner(m []*big.Int, inverse func(i, j int) (*big.Int, error)) (*garner, error) {
	g := &garner{m: m, inv: make([][]*big.Int, len(m))}
	for j := range m {
		g.inv[j] = make([]*big.Int, j)
		for i := 0; i < j; i++ {
			c, err := inverse(i, j)
			if err != nil {
				return nil, err
			}
			g.inv[j][i] = c
		}
	}
	return g, nil
}

// newGarnerDirect builds a plan for explicit moduli, computing inverses
// directly (used for small test moduli).
func newGarnerDirect(m []*big.Int) (*garner, error) {
	return newGarner(m, func(i, j int) (*big.Int, error) {
		v := new(big.Int).ModInverse(m[i], m[j])
		if v == nil {
			return nil, fmt.Errorf("%w: moduli %v and %v are not coprime", ErrInconsistent, m[i], m[j])
		}
		return v, nil
	})
}

// garnerScratch holds reusable temporaries; one per goroutine.
type garnerScratch struct {
	v         []*big.Int
	x, q, rem big.Int
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
	for j := 0; j < t; j++ {
		x := &s.x
		x.Set(r[j])
		mj := g.m[j]
		for i := 0; i < j; i++ {
			x.Sub(x, s.v[i])
			x.Mul(x, g.inv[j][i])
			s.q.QuoRem(x, mj, &s.rem)
			if s.rem.Sign() < 0 {
				s.rem.Add(&s.rem, mj)
			}
			x.Set(&s.rem)
		}
		s.v[j].Set(x)
	}
	y.Set(s.v[t-1])
	for j := t - 2; j >= 0; j-- {
		y.Mul(y, g.m[j])
		y.Add(y, s.v[j])
	}
	return y
}
