package qkd

import (
	"fmt"
	"math"
)

// Channel describes the simulated quantum channel between Alice's source and
// Bob's detectors. Alice sends ideal single photons; a photon reaches Bob's
// detector with probability Transmittance(); the channel depolarizes each
// qubit with probability Noise (QBER Noise/2); each of Bob's two detectors
// fires spuriously with probability DarkCount per pulse; an eavesdropper
// intercepts and resends a fraction Eve of the qubits in a random basis.
type Channel struct {
	// Noise is the depolarizing probability p in [0, 1]; it alone gives a
	// QBER of p/2.
	Noise float64 `json:"noise"`
	// DistanceKM is the fiber length in kilometres (>= 0).
	DistanceKM float64 `json:"distance_km"`
	// AttenuationDBPerKM is the fiber loss (default 0.2 dB/km).
	AttenuationDBPerKM float64 `json:"attenuation_db_per_km"`
	// DetectorEfficiency is Bob's detection efficiency in (0, 1].
	DetectorEfficiency float64 `json:"detector_efficiency"`
	// DarkCount is the probability that one detector clicks with no photon,
	// per pulse, in [0, 1).
	DarkCount float64 `json:"dark_count"`
	// Eve is the fraction of qubits intercepted and resent, in [0, 1].
	Eve float64 `json:"eve"`
}

// DefaultChannel is a perfect channel: no distance, no noise, ideal
// detectors, no eavesdropper.
func DefaultChannel() Channel {
	return Channel{AttenuationDBPerKM: 0.2, DetectorEfficiency: 1}
}

// Validate reports the first field out of range.
func (c Channel) Validate() error {
	in01 := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%w: %s %v not in [0,1]", ErrInvalidConfig, name, v)
		}
		return nil
	}
	if err := in01("noise", c.Noise); err != nil {
		return err
	}
	if err := in01("eve", c.Eve); err != nil {
		return err
	}
	if !(c.DistanceKM >= 0) || math.IsInf(c.DistanceKM, 0) {
		return fmt.Errorf("%w: distance %v km", ErrInvalidConfig, c.DistanceKM)
	}
	if !(c.AttenuationDBPerKM >= 0) || math.IsInf(c.AttenuationDBPerKM, 0) {
		return fmt.Errorf("%w: attenuation %v dB/km", ErrInvalidConfig, c.AttenuationDBPerKM)
	}
	if !(c.DetectorEfficiency > 0 && c.DetectorEfficiency <= 1) {
		return fmt.Errorf("%w: detector efficiency %v not in (0,1]", ErrInvalidConfig, c.DetectorEfficiency)
	}
	if !(c.DarkCount >= 0 && c.DarkCount < 1) {
		return fmt.Errorf("%w: dark count %v not in [0,1)", ErrInvalidConfig, c.DarkCount)
	}
	return nil
}

// Transmittance is the probability that a sent photon is detected:
// 10^(-alpha*L/10) times the detector efficiency.
func (c Channel) Transmittance() float64 {
	return math.Pow(10, -c.AttenuationDBPerKM*c.DistanceKM/10) * c.DetectorEfficiency
}

// darkProb is the probability that at least one of the two detectors fires
// spuriously in a pulse.
func (c Channel) darkProb() float64 { return 1 - (1-c.DarkCount)*(1-c.DarkCount) }

// DetectionProb is the probability that Bob registers a click per pulse.
func (c Channel) DetectionProb() float64 {
	eta, d := c.Transmittance(), c.darkProb()
	return 1 - (1-eta)*(1-d)
}

// ModelQBER is the expected error rate of the sifted key under this model.
// Intercept-resend on a fraction F of the qubits contributes F/4, the
// depolarizing noise p/2 (independent flips compose as e1+e2-2e1e2), and a
// click with a dark count carries a uniformly random bit.
func (c Channel) ModelQBER() float64 {
	e1, e2 := c.Eve/4, c.Noise/2
	es := e1 + e2 - 2*e1*e2
	eta, d := c.Transmittance(), c.darkProb()
	pc := 1 - (1-eta)*(1-d)
	if pc == 0 {
		return 0
	}
	return (eta*(1-d)*es + d/2) / pc
}

// AliceRecord is what Alice's device knows after sending: her bit and basis
// for every pulse (basis 0 = rectilinear, 1 = diagonal).
type AliceRecord struct {
	Bits  *Bits
	Bases *Bits
}

// BobRecord is what Bob's device knows: which pulses clicked, the basis he
// measured in and the result (meaningful only where Detected is one).
type BobRecord struct {
	Detected *Bits
	Bases    *Bits
	Results  *Bits
}

// Len returns the number of pulses.
func (a AliceRecord) Len() int { return a.Bits.Len() }

// Len returns the number of pulses.
func (b BobRecord) Len() int { return b.Detected.Len() }

// Simulate sends n qubits through the channel. Each party and the channel
// draw from their own streams, so Alice's data does not depend on Eve's
// presence for a fixed seed. The simulation works on 64 qubits at a time
// with word-wide logic.
func Simulate(c Channel, n int, seed []byte) (AliceRecord, BobRecord, error) {
	if err := c.Validate(); err != nil {
		return AliceRecord{}, BobRecord{}, err
	}
	if n < 0 {
		return AliceRecord{}, BobRecord{}, fmt.Errorf("%w: %d qubits", ErrInvalidConfig, n)
	}
	r := randomness{seed: seed}
	return simulate(c, n, r.stream("alice-device"), r.stream("bob-device"), r.stream("channel"), r.stream("eve"))
}

func simulate(c Channel, n int, ra, rb, rc, re source) (AliceRecord, BobRecord, error) {
	words := (n + 63) / 64
	ab, aB := make([]uint64, words), make([]uint64, words)
	det, bB, res := make([]uint64, words), make([]uint64, words), make([]uint64, words)

	tEve, eveAll := threshold(c.Eve)
	tFlip, flipAll := threshold(c.Noise / 2)
	tDet, detAll := threshold(c.Transmittance())
	tDark, darkAll := threshold(c.darkProb())
	withEve := eveAll || tEve != 0
	withDark := darkAll || tDark != 0

	for i := 0; i < words; i++ {
		a, A := ra.Uint64(), ra.Uint64() // Alice: bit, basis
		s, S := a, A                     // state on the fiber: bit, basis
		if withEve {
			e := bernoulli(re, tEve, eveAll)
			eb, er := re.Uint64(), re.Uint64()
			m := a&^(eb^A) | er&(eb^A) // Eve's result: right basis reads a, wrong is random
			s = s&^e | m&e
			S = S&^e | eb&e
		}
		B, br := rb.Uint64(), rb.Uint64()
		out := s&^(B^S) | br&(B^S) // matching basis reads the bit, else random
		out ^= bernoulli(rc, tFlip, flipAll)
		click := bernoulli(rc, tDet, detAll)
		if withDark {
			dk := bernoulli(rc, tDark, darkAll)
			out = out&^dk | rb.Uint64()&dk
			click |= dk
		}
		ab[i], aB[i] = a, A
		det[i], bB[i], res[i] = click, B, out&click
	}
	alice := AliceRecord{Bits: BitsFromWords(ab, n), Bases: BitsFromWords(aB, n)}
	bob := BobRecord{Detected: BitsFromWords(det, n), Bases: BitsFromWords(bB, n), Results: BitsFromWords(res, n)}
	return alice, bob, nil
}

// siftMask returns the positions (over all pulses) where Bob clicked and the
// two bases agree. Used by tests and paper mode; the full protocol computes
// the same thing from exchanged messages.
func siftMask(a AliceRecord, b BobRecord) *Bits {
	m := NewBits(a.Len())
	for i := range m.w {
		m.w[i] = b.Detected.w[i] &^ (a.Bases.w[i] ^ b.Bases.w[i])
	}
	return m
}
