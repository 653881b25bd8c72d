package sharing

import (
	"errors"
	"fmt"
)

// Errors returned by this package. They are wrapped with context; test for
// them with errors.Is.
var (
	// ErrThreshold: the threshold t is below 1 or above the number of
	// shares n.
	ErrThreshold = errors.New("sharing: invalid threshold")
	// ErrShareCount: the number of shares n is below 1 or above MaxShares,
	// or the number of writers does not match n.
	ErrShareCount = errors.New("sharing: invalid number of shares")
	// ErrEmptyData: there is nothing to split. Empty data is refused in
	// every mode rather than turned into shares of nothing.
	ErrEmptyData = errors.New("sharing: empty data")
	// ErrDataTooLarge: the data exceeds the limit of its mode (MaxSecretSize
	// for asmuth-bloom, MaxLength or 2^32 segments otherwise).
	ErrDataTooLarge = errors.New("sharing: data too large")
	// ErrSegmentSize: the segment size is outside [MinSegmentSize,
	// MaxSegmentSize].
	ErrSegmentSize = errors.New("sharing: invalid segment size")
	// ErrUnknownScheme: the scheme name or code is not one of paper,
	// asmuth-bloom, dispersal.
	ErrUnknownScheme = errors.New("sharing: unknown scheme")
	// ErrTooFewShares: fewer than t usable shares were given. The message
	// says how many were given and how many are needed.
	ErrTooFewShares = errors.New("sharing: too few shares")
	// ErrMixedShares: the shares do not all come from the same split
	// (split ID, scheme, t, n or parameters differ).
	ErrMixedShares = errors.New("sharing: shares from different splits")
	// ErrDuplicateIndex: two shares carry the same index.
	ErrDuplicateIndex = errors.New("sharing: duplicate share index")
	// ErrTampered: a share's content does not match its hash.
	ErrTampered = errors.New("sharing: share hash mismatch")
	// ErrMalformed: a share's encoding or fields are not well formed
	// (truncated, trailing bytes, oversize or inconsistent fields).
	ErrMalformed = errors.New("sharing: malformed share")
	// ErrVersion: the share encoding version is not supported.
	ErrVersion = errors.New("sharing: unsupported share version")
	// ErrAuthentication: in dispersal mode a segment, the manifest or a
	// Merkle proof failed to authenticate: some share was altered in a way
	// its own hash cannot show (it was re-hashed), or the key shares are
	// wrong. In paper mode, the SHA-256 digest of the recovered data did not
	// match.
	ErrAuthentication = errors.New("sharing: authentication failed")
	// ErrInconsistent: the shares are individually well formed but do not
	// agree with each other (for example a residue that contradicts the
	// others, or a recovered value out of range).
	ErrInconsistent = errors.New("sharing: shares inconsistent")
)

// ShareError reports a problem with one particular share.
type ShareError struct {
	// Index is the share index (0-based, as carried by the share).
	Index int
	// Err is the underlying error, usually ErrTampered or ErrMalformed.
	Err error
}

func (e *ShareError) Error() string {
	return fmt.Sprintf("sharing: share %d: %v", e.Index, e.Err)
}

func (e *ShareError) Unwrap() error { return e.Err }

func shareErr(index int, err error) error { return &ShareError{Index: index, Err: err} }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
