package function

import "errors"

// Encoding errors: every decoder returns one of these, wrapped with context.
var (
	// ErrTruncated means the input ended before the value was complete.
	ErrTruncated = errors.New("function: truncated input")
	// ErrTrailingBytes means bytes follow a complete value.
	ErrTrailingBytes = errors.New("function: trailing bytes")
	// ErrUnknownVersion means the encoding version is not one this code reads.
	ErrUnknownVersion = errors.New("function: unknown encoding version")
	// ErrTooLarge means a field exceeds its limit.
	ErrTooLarge = errors.New("function: value too large")
)

// Deployment errors.
var (
	// ErrInvalidSpec means a Spec field holds a value that is not allowed.
	ErrInvalidSpec = errors.New("function: invalid function spec")
	// ErrCodeHash means the module bytes do not hash to the spec's CodeHash.
	ErrCodeHash = errors.New("function: code does not match its hash")
	// ErrEmptyCode means a deployment carries no module bytes.
	ErrEmptyCode = errors.New("function: empty module")
)
