package chain

import "errors"

// Decoding errors. Every decoder returns one of these, wrapped with context.
var (
	// ErrTruncated means the input ended before the value was complete.
	ErrTruncated = errors.New("chain: truncated input")
	// ErrTrailingBytes means bytes follow a complete value.
	ErrTrailingBytes = errors.New("chain: trailing bytes")
	// ErrUnknownVersion means the encoding version is not one this code reads.
	ErrUnknownVersion = errors.New("chain: unknown encoding version")
	// ErrTooLarge means a field or a whole value exceeds its limit.
	ErrTooLarge = errors.New("chain: value too large")
	// ErrInvalid means a field holds a value that is not allowed.
	ErrInvalid = errors.New("chain: invalid value")
)

// Chain verification errors: VerifyChain reports the first of these it finds
// together with the height where it was found (see *VerifyError).
var (
	ErrHashLink   = errors.New("chain: previous-hash link broken")
	ErrTxRoot     = errors.New("chain: transaction Merkle root mismatch")
	ErrLogRoot    = errors.New("chain: log size or root mismatch")
	ErrHeightGap  = errors.New("chain: height gap")
	ErrDecoding   = errors.New("chain: block does not decode")
	ErrWrongGroup = errors.New("chain: block belongs to another group")
	ErrTimestamp  = errors.New("chain: timestamp goes backwards")
)
