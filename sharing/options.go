package sharing

import (
	"crypto/rand"
	"fmt"
	"io"
)

// Limits.
const (
	// MaxShares is the largest n. Share indices are one byte and
	// Reed-Solomon over GF(2^8) allows at most 256 shards.
	MaxShares = 255
	// MaxSecretSize is the largest secret, in bytes, that the asmuth-bloom
	// mode splits. Its shares are each as large as the secret.
	MaxSecretSize = 512
	// MaxLength is the largest data length, in bytes, of any split.
	MaxLength = 1 << 50
	// MinSegmentSize and MaxSegmentSize bound Options.SegmentSize.
	MinSegmentSize = 16
	MaxSegmentSize = 64 << 20
	// DefaultSegmentSize is the dispersal segment (plaintext bytes per
	// AES-GCM segment and payload frame), reduced by default when n/t > 16
	// so that a segment and its parity stay within 16 MiB (at least 64 KiB).
	DefaultSegmentSize = 1 << 20
	// DefaultPaperSegmentSize is the paper-mode segment before it is
	// rounded down to a whole number of chunks.
	DefaultPaperSegmentSize = 64 << 10
)

// Options says how to split. The zero value is not usable: Threshold and
// Shares must be set (DefaultOptions does).
type Options struct {
	// Scheme selects the mode; the zero value means Dispersal.
	Scheme Scheme
	// Threshold is t: any t shares recover the data; 1 <= t <= Shares.
	Threshold int
	// Shares is n, the number of shares; 1 <= n <= MaxShares. Share i is
	// meant for node group i (i = 0..n-1).
	Shares int
	// SegmentSize is the number of data bytes per payload frame, in
	// [MinSegmentSize, MaxSegmentSize]. Zero means DefaultSegmentSize
	// (dispersal; less when n/t > 16) or DefaultPaperSegmentSize (paper).
	// Paper mode rounds it down to a whole number of chunks (at least one).
	// Ignored by asmuth-bloom. Dispersal data shorter than 64 KiB (or than
	// SegmentSize) gets a segment size equal to its length. Splitting holds up to four segments with
	// their parity, 4*n/t*SegmentSize bytes, in memory; recovery two
	// segments with up to t parity shards.
	SegmentSize int
	// Rand supplies the randomness: data key, nonce prefix, blinding
	// factors and split ID. Nil means crypto/rand.Reader. Only tests should
	// set it.
	Rand io.Reader
}

// DefaultOptions returns options for the default mode (Dispersal) with
// threshold t and n shares.
func DefaultOptions(t, n int) Options {
	return Options{Scheme: Dispersal, Threshold: t, Shares: n}
}

// Validate reports whether the options can be used, with ErrUnknownScheme,
// ErrShareCount, ErrThreshold or ErrSegmentSize.
func (o Options) Validate() error {
	if o.Scheme != 0 && !o.Scheme.Valid() {
		return fmt.Errorf("%w: %d", ErrUnknownScheme, uint8(o.Scheme))
	}
	if o.Shares < 1 || o.Shares > MaxShares {
		return fmt.Errorf("%w: n = %d, want 1..%d", ErrShareCount, o.Shares, MaxShares)
	}
	if o.Threshold < 1 || o.Threshold > o.Shares {
		return fmt.Errorf("%w: t = %d, want 1..n (n = %d)", ErrThreshold, o.Threshold, o.Shares)
	}
	if o.SegmentSize != 0 && (o.SegmentSize < MinSegmentSize || o.SegmentSize > MaxSegmentSize) {
		return fmt.Errorf("%w: %d, want %d..%d", ErrSegmentSize, o.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	return nil
}

func (o Options) scheme() Scheme {
	if o.Scheme == 0 {
		return Dispersal
	}
	return o.Scheme
}

func (o Options) rand() io.Reader {
	if o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}
