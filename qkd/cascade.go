package qkd

import (
	"fmt"
	"math"
)

// Cascade (Brassard and Salvail, EUROCRYPT '93), original parameters: first
// block size k1 = ceil(0.73/Q), doubling every pass, a fresh public shuffle
// per pass after the first, BINARY bisection of every block whose parity
// differs, and cascading: a corrected bit flips the parity of the block that
// holds it in every earlier pass, and those blocks are bisected in turn.
//
// Bob drives; Alice only answers parity questions, so the exchange runs over
// any request/response transport. To save round trips, all odd blocks that
// do not share a bit are bisected in parallel, one parity per block per
// round; Bob's bits do not change during a round, so each bisection still
// ends on a true error. Every parity Alice reveals is counted as one leaked
// bit; parities Bob can infer (the right half of a range whose whole and
// left parities he knows) are cached and cost nothing.

// minCascadeQBER floors the QBER used to size blocks, so a sample with no
// errors still leads to finite blocks.
const minCascadeQBER = 0.001

// cascadeBlockSize returns the block size of pass p for estimated QBER q.
func cascadeBlockSize(q float64, n, p int) int {
	if q < minCascadeQBER {
		q = minCascadeQBER
	}
	k := int(math.Ceil(0.73 / q))
	for i := 0; i < p && k < n; i++ {
		k *= 2
	}
	if k > n {
		k = n
	}
	if k < 1 {
		k = 1
	}
	return k
}

type rangeKey struct{ pass, start, end int }

type bobPass struct {
	k     int
	perm  []uint32 // shuffled position -> original index; nil for identity
	inv   []uint32 // original index -> shuffled position; nil for identity
	bits  *Bits    // Bob's bits in shuffled order
	alice *Bits    // Alice's parity of each block
	odd   *Bits    // blocks whose parities differ
}

func (p *bobPass) pos(i int) int {
	if p.inv == nil {
		return i
	}
	return int(p.inv[i])
}

func (p *bobPass) orig(s int) int {
	if p.perm == nil {
		return s
	}
	return int(p.perm[s])
}

func (p *bobPass) blockEnd(b int) int { return min((b+1)*p.k, p.bits.Len()) }

// cascadeBob is Bob's side. exchange sends a request (CascadePass or
// CascadeQuery) and returns the parities Alice answered.
type cascadeBob struct {
	key       *Bits
	passes    []*bobPass
	known     map[rangeKey]uint64
	leak      int
	rounds    int
	corrected int
	exchange  func(*Message) (*Bits, error)
}

func newCascadeBob(key *Bits, exchange func(*Message) (*Bits, error)) *cascadeBob {
	return &cascadeBob{key: key, known: make(map[rangeKey]uint64), exchange: exchange}
}

// run performs all passes. seeds supplies a fresh 32-byte shuffle seed per
// pass.
func (c *cascadeBob) run(q float64, passes int, seeds func() []byte) error {
	n := c.key.Len()
	for p := 0; p < passes; p++ {
		k := cascadeBlockSize(q, n, p)
		seed := seeds()
		par, err := c.exchange(&Message{Type: MsgCascadePass, Pass: p, BlockSize: k, Seed: seed})
		if err != nil {
			return err
		}
		c.rounds++
		nb := (n + k - 1) / k
		if par.Len() != nb {
			return fmt.Errorf("%w: %d block parities for %d blocks", ErrMismatch, par.Len(), nb)
		}
		c.leak += nb
		c.startPass(p, k, seed, par)
		for {
			sel := c.selectOdd()
			if len(sel) == 0 {
				break
			}
			if err := c.bisect(sel); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cascadeBob) startPass(p, k int, seed []byte, alice *Bits) {
	n := c.key.Len()
	bp := &bobPass{k: k, alice: alice}
	if p == 0 {
		bp.bits = c.key.Clone()
	} else {
		bp.perm = permutation([32]byte(seed), n)
		bp.inv = make([]uint32, n)
		for s, o := range bp.perm {
			bp.inv[o] = uint32(s)
		}
		bp.bits = gather(c.key, bp.perm)
	}
	nb := alice.Len()
	bp.odd = NewBits(nb)
	for b := 0; b < nb; b++ {
		if bp.bits.Parity(b*k, bp.blockEnd(b)) != alice.Bit(b) {
			bp.odd.Set(b, 1)
		}
	}
	c.passes = append(c.passes, bp)
}

// gather returns x permuted: out[s] = x[perm[s]].
func gather(x *Bits, perm []uint32) *Bits {
	out := NewBits(len(perm))
	for s, o := range perm {
		out.w[s>>6] |= (x.w[o>>6] >> (o & 63) & 1) << (s & 63)
	}
	return out
}

type bisection struct {
	pass, lo, hi int
	ap           uint64 // Alice's parity of [lo, hi)
}

// selectOdd picks odd blocks, smallest passes first, that share no bit
// with a block already picked.
func (c *cascadeBob) selectOdd() []*bisection {
	var sel []*bisection
	claimed := NewBits(c.key.Len())
	for pi, p := range c.passes {
		for wi, w := range p.odd.w {
			for w != 0 {
				b := wi*64 + trailingZeros(w)
				w &= w - 1
				s := &bisection{pass: pi, lo: b * p.k, hi: p.blockEnd(b), ap: p.alice.Bit(b)}
				if c.claim(claimed, s) {
					sel = append(sel, s)
				}
			}
		}
	}
	return sel
}

// claim marks the original positions of s in claimed and reports true, or
// reports false (marking nothing) if any of them is already marked.
func (c *cascadeBob) claim(claimed *Bits, s *bisection) bool {
	p := c.passes[s.pass]
	for x := s.lo; x < s.hi; x++ {
		o := p.orig(x)
		if claimed.w[o>>6]>>(o&63)&1 == 1 {
			return false
		}
	}
	for x := s.lo; x < s.hi; x++ {
		o := p.orig(x)
		claimed.w[o>>6] |= 1 << (o & 63)
	}
	return true
}

func (c *cascadeBob) bisect(active []*bisection) error {
	var found []int
	for len(active) > 0 {
		var queries []Range
		waiting := active[:0:0]
		for _, b := range active {
			for b.hi-b.lo > 1 {
				mid := b.lo + (b.hi-b.lo)/2
				if ap, ok := c.known[rangeKey{b.pass, b.lo, mid}]; ok {
					c.narrow(b, mid, ap)
					continue
				}
				queries = append(queries, Range{Pass: b.pass, Start: b.lo, End: mid})
				waiting = append(waiting, b)
				break
			}
			if b.hi-b.lo == 1 {
				found = append(found, c.passes[b.pass].orig(b.lo))
			}
		}
		if len(queries) == 0 {
			break
		}
		par, err := c.exchange(&Message{Type: MsgCascadeQuery, Ranges: queries})
		if err != nil {
			return err
		}
		if par.Len() != len(queries) {
			return fmt.Errorf("%w: %d parities for %d queries", ErrMismatch, par.Len(), len(queries))
		}
		c.rounds++
		c.leak += len(queries)
		for i, q := range queries {
			ap := par.Bit(i)
			c.known[rangeKey{q.Pass, q.Start, q.End}] = ap
			c.narrow(waiting[i], q.End, ap)
		}
		active = waiting
	}
	for _, o := range found {
		c.flip(o)
	}
	return nil
}

// narrow keeps the half of b that still has odd parity difference, given
// Alice's parity of the left half [lo, mid).
func (c *cascadeBob) narrow(b *bisection, mid int, aliceLeft uint64) {
	p := c.passes[b.pass]
	if p.bits.Parity(b.lo, mid) != aliceLeft {
		b.hi, b.ap = mid, aliceLeft
		return
	}
	right := b.ap ^ aliceLeft
	c.known[rangeKey{b.pass, mid, b.hi}] = right
	b.lo, b.ap = mid, right
}

func (c *cascadeBob) flip(o int) {
	c.key.Flip(o)
	c.corrected++
	for _, p := range c.passes {
		s := p.pos(o)
		p.bits.Flip(s)
		p.odd.Flip(s / p.k)
	}
}

// cascadeAlice answers Bob's parity questions about her key.
type cascadeAlice struct {
	key    *Bits
	q      float64
	passes []*Bits // Alice's bits in each pass's shuffled order
	ks     []int
	leak   int
}

func (a *cascadeAlice) startPass(m *Message, maxPasses int) (*Bits, error) {
	n := a.key.Len()
	p := len(a.passes)
	if m.Pass != p || p >= maxPasses {
		return nil, fmt.Errorf("%w: cascade pass %d, expected %d of %d", ErrUnexpectedMessage, m.Pass, p, maxPasses)
	}
	if k := cascadeBlockSize(a.q, n, p); m.BlockSize != k {
		return nil, fmt.Errorf("%w: cascade block size %d, expected %d", ErrMismatch, m.BlockSize, k)
	}
	k := m.BlockSize
	var bits *Bits
	if p == 0 {
		bits = a.key
	} else {
		bits = gather(a.key, permutation([32]byte(m.Seed), n))
	}
	a.passes = append(a.passes, bits)
	a.ks = append(a.ks, k)
	nb := (n + k - 1) / k
	out := NewBits(nb)
	for b := 0; b < nb; b++ {
		out.Set(b, bits.Parity(b*k, min((b+1)*k, n)))
	}
	a.leak += nb
	return out, nil
}

func (a *cascadeAlice) answer(m *Message) (*Bits, error) {
	n := a.key.Len()
	out := NewBits(len(m.Ranges))
	for i, r := range m.Ranges {
		if r.Pass >= len(a.passes) || r.Start < 0 || r.End > n || r.Start >= r.End {
			return nil, fmt.Errorf("%w: parity range %+v (passes %d, n %d)", ErrUnexpectedMessage, r, len(a.passes), n)
		}
		out.Set(i, a.passes[r.Pass].Parity(r.Start, r.End))
	}
	a.leak += len(m.Ranges)
	return out, nil
}
