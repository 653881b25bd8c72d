package qkd

import "fmt"

// blockPlan is the privacy amplification plan both endpoints derive from
// the same public numbers.
type blockPlan struct {
	fk     FiniteKey
	mu     float64
	secure int // finite-key bound
	refill int // output bits that top up the authentication store
	keys   int // whole keys after the refill
	output int // refill + keys*KeyBits <= secure
	keyLen int
}

func planBlock(cfg Config, n, k int, q float64, leak, availAfter int) blockPlan {
	qtol, steps := tolGrid(q, cfg.QBERStep, cfg.QBERThreshold)
	fk := FiniteKey{N: n, K: k, QTol: qtol, LeakEC: leak, EpsSec: cfg.EpsSec, EpsCor: cfg.EpsCor, Steps: steps}
	p := blockPlan{fk: fk, mu: fk.Mu(), secure: fk.Length(), keyLen: cfg.KeyBits}
	p.refill, p.keys = outputPlan(p.secure, cfg.AuthReserve, availAfter, cfg.KeyBits)
	p.output = p.refill + p.keys*cfg.KeyBits
	return p
}

func (p blockPlan) check() error {
	if p.secure == 0 {
		return fmt.Errorf("%w: finite-key length is 0 (n=%d, k=%d, Q_tol=%.3f, mu=%.4f, leak=%d)",
			ErrNoSecretKey, p.fk.N, p.fk.K, p.fk.QTol, p.mu, p.fk.LeakEC)
	}
	if p.output == 0 {
		return fmt.Errorf("%w: %d secure bits are less than one authentication pad", ErrNoSecretKey, p.secure)
	}
	return nil
}

func (p blockPlan) fill(s *Stats, cfg Config) {
	s.QTol, s.Mu, s.SecureBits, s.OutputBits = p.fk.QTol, p.mu, p.secure, p.output
	s.RefillBits, s.Keys, s.KeyBits = p.refill, p.keys, cfg.KeyBits
}
