package execrecord

import "errors"

// Decoding and encoding errors.
var (
	// ErrTruncated means the input ended before the record was complete.
	ErrTruncated = errors.New("execrecord: truncated input")
	// ErrTrailingBytes means bytes follow a complete record.
	ErrTrailingBytes = errors.New("execrecord: trailing bytes")
	// ErrUnknownVersion means the encoding version is not one this code
	// reads.
	ErrUnknownVersion = errors.New("execrecord: unknown encoding version")
	// ErrTooLarge means a field exceeds its limit.
	ErrTooLarge = errors.New("execrecord: value too large")
	// ErrMalformed means a field holds a value the format does not allow
	// (an unknown outcome or flag, a version 1 record that is not the JSON
	// it should be).
	ErrMalformed = errors.New("execrecord: malformed record")
)
