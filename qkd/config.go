package qkd

import (
	"fmt"
	"math"
)

// Mode selects the post-processing protocol.
type Mode string

// Modes.
const (
	// ModeFull is BB84 with sifting, parameter estimation, Cascade,
	// verification, privacy amplification and authenticated messages.
	ModeFull Mode = "full"
	// ModePaper is the seed paper's protocol: sift, publish half, keep half.
	ModePaper Mode = "paper"
)

// Config configures a block of key generation. Both endpoints must use the
// same protocol fields (everything except Channel and Seed, which only the
// simulation reads).
type Config struct {
	// Mode is ModeFull (default) or ModePaper.
	Mode Mode `json:"mode"`
	// Qubits is the number of pulses Alice sends per block.
	Qubits int `json:"qubits"`
	// Channel is the simulated quantum channel.
	Channel Channel `json:"channel"`
	// Seed, if set, makes every random choice reproducible: each party,
	// the channel and Eve draw from ChaCha8 streams keyed by
	// SHA-256(Seed, name). Nil draws from crypto/rand. Never set it in
	// production.
	Seed []byte `json:"-"`
	// QBERThreshold aborts a block whose estimated QBER is above it.
	QBERThreshold float64 `json:"qber_threshold"`
	// QBERStep is the spacing of the public grid of tolerated QBER values
	// used by the finite-key bound (see FiniteKey).
	QBERStep float64 `json:"qber_step"`
	// SampleFraction of the sifted bits is published to estimate the QBER.
	SampleFraction float64 `json:"sample_fraction"`
	// CascadePasses is the number of Cascade passes (original: 4).
	CascadePasses int `json:"cascade_passes"`
	// EpsSec is the secrecy parameter of the output key.
	EpsSec float64 `json:"eps_sec"`
	// EpsCor is the correctness parameter; the verification hash has
	// ceil(log2(1/EpsCor)) bits.
	EpsCor float64 `json:"eps_cor"`
	// KeyBits is the size of each output key (a multiple of 8).
	KeyBits int `json:"key_bits"`
	// AuthReserve is the number of authentication key bytes kept in the
	// pad store; each completed block tops the store back up to it from
	// the generated key before any key is output.
	AuthReserve int `json:"auth_reserve"`
	// BootstrapKey is the pre-shared authentication key (at least
	// MinBootstrapBytes). Nil draws AuthReserve+16 random bytes, which is
	// only meaningful in simulation, where one process holds both ends.
	BootstrapKey []byte `json:"-"`
	// PaperAttempts bounds paper mode's restarts after a failed check.
	PaperAttempts int `json:"paper_attempts"`
}

// DefaultConfig returns full-mode defaults: 2^20 qubits over a perfect
// channel, 11% threshold, 10% sample, 4 Cascade passes, eps_sec = 1e-10,
// eps_cor = 1e-15, 256-bit keys.
func DefaultConfig() Config {
	return Config{
		Mode:           ModeFull,
		Qubits:         1 << 20,
		Channel:        DefaultChannel(),
		QBERThreshold:  0.11,
		QBERStep:       0.001,
		SampleFraction: 0.1,
		CascadePasses:  4,
		EpsSec:         1e-10,
		EpsCor:         1e-15,
		KeyBits:        256,
		AuthReserve:    8192,
		PaperAttempts:  16,
	}
}

// maxQubits bounds a block, which keeps privacy amplification's transform
// (two uint32 arrays of about 2 x sifted entries) below 256 MiB.
const maxQubits = 1 << 24

// Validate reports the first invalid field.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	if c.Mode != ModeFull && c.Mode != ModePaper {
		return bad("mode %q (want %q or %q)", c.Mode, ModeFull, ModePaper)
	}
	if c.Qubits < 1 || c.Qubits > maxQubits {
		return bad("qubits %d not in [1, %d]", c.Qubits, maxQubits)
	}
	if err := c.Channel.Validate(); err != nil {
		return err
	}
	if !(c.QBERThreshold > 0 && c.QBERThreshold < 0.5) {
		return bad("QBER threshold %v not in (0, 0.5)", c.QBERThreshold)
	}
	if !(c.QBERStep > 0 && c.QBERStep <= c.QBERThreshold) || c.QBERThreshold/c.QBERStep > 1e6 {
		return bad("QBER step %v", c.QBERStep)
	}
	if !(c.SampleFraction > 0 && c.SampleFraction < 1) {
		return bad("sample fraction %v not in (0, 1)", c.SampleFraction)
	}
	if c.CascadePasses < 1 || c.CascadePasses > maxPass+1 {
		return bad("cascade passes %d not in [1, %d]", c.CascadePasses, maxPass+1)
	}
	if !(c.EpsSec > 0 && c.EpsSec < 1) || !(c.EpsCor > 0 && c.EpsCor < 1) {
		return bad("eps_sec %v / eps_cor %v not in (0, 1)", c.EpsSec, c.EpsCor)
	}
	if c.KeyBits < 8 || c.KeyBits%8 != 0 || c.KeyBits > 1<<16 {
		return bad("key bits %d (want a multiple of 8 in [8, 65536])", c.KeyBits)
	}
	if c.AuthReserve < padBytes {
		return bad("auth reserve %d < %d", c.AuthReserve, padBytes)
	}
	if c.BootstrapKey != nil && len(c.BootstrapKey) < MinBootstrapBytes {
		return bad("bootstrap key of %d bytes < %d", len(c.BootstrapKey), MinBootstrapBytes)
	}
	if c.Mode == ModePaper && c.PaperAttempts < 1 {
		return bad("paper attempts %d < 1", c.PaperAttempts)
	}
	return nil
}

// verifyBits is the length of the verification hash.
func (c Config) verifyBits() int { return int(math.Ceil(math.Log2(1 / c.EpsCor))) }

// sampleSize is the number of sifted bits published for estimation.
func (c Config) sampleSize(sifted int) int {
	return int(math.Ceil(c.SampleFraction * float64(sifted)))
}

// ParseMode reads "full" or "paper" (the CLI's --mode flag).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeFull, ModePaper:
		return Mode(s), nil
	case "":
		return ModeFull, nil
	}
	return "", fmt.Errorf("%w: mode %q (want %q or %q)", ErrInvalidConfig, s, ModeFull, ModePaper)
}
