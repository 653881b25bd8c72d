package qkd

import "fmt"

// PaperResult is the outcome of the seed paper's protocol on one
// transmission: the sifted string (the RQT), the published check half and
// the key half, for Alice and for Bob.
type PaperResult struct {
	// AliceSifted and BobSifted are the bits where Bob detected and the
	// bases agree, in pulse order.
	AliceSifted, BobSifted *Bits
	// AliceCheck and BobCheck are the even positions of the sifted strings
	// (0, 2, 4, ... counted MSB-first), which are published.
	AliceCheck, BobCheck *Bits
	// Key is the odd positions of the sifted string; set only if every
	// check bit matched.
	Key *Bits
	// CheckErrors counts mismatching check bits.
	CheckErrors int
}

// Paper runs the seed paper's simplified BB84 (section 4.1 and 7.2, Table 4)
// on one transmission: keep the pulses where the bases agree, publish the
// even half, and accept the odd half as the key only if every published bit
// matches; otherwise return an error wrapping ErrAborted and ErrCheckFailed
// (the caller restarts with a new transmission). The check positions are
// fixed in advance as in Table 4, there is no error correction, no privacy
// amplification and no authentication: see DESIGN.md for why this is not
// secure.
func Paper(alice AliceRecord, bob BobRecord) (PaperResult, error) {
	if alice.Bits == nil || alice.Bases == nil || bob.Detected == nil || bob.Bases == nil || bob.Results == nil {
		return PaperResult{}, fmt.Errorf("%w: incomplete records", ErrInvalidConfig)
	}
	if alice.Bits.Len() != alice.Bases.Len() || bob.Detected.Len() != alice.Len() ||
		bob.Bases.Len() != alice.Len() || bob.Results.Len() != alice.Len() {
		return PaperResult{}, fmt.Errorf("%w: records of different lengths", ErrInvalidConfig)
	}
	m := siftMask(alice, bob)
	r := PaperResult{AliceSifted: alice.Bits.Select(m), BobSifted: bob.Results.Select(m)}
	r.AliceCheck, r.BobCheck = r.AliceSifted.Even(), r.BobSifted.Even()
	r.CheckErrors = r.AliceCheck.Distance(r.BobCheck)
	if r.AliceSifted.Len() < 2 {
		return r, fmt.Errorf("%w: %w: %d sifted bits", ErrAborted, ErrTooFewBits, r.AliceSifted.Len())
	}
	if r.CheckErrors > 0 {
		return r, fmt.Errorf("%w: %w: %d of %d check bits differ", ErrAborted, ErrCheckFailed, r.CheckErrors, r.AliceCheck.Len())
	}
	r.Key = r.AliceSifted.Odd()
	return r, nil
}
