package chain

import "qledger/internal/wire"

// wireErrors names this package's errors for the shared codec.
var wireErrors = wire.Errors{Truncated: ErrTruncated, TooLarge: ErrTooLarge, Trailing: ErrTrailingBytes}

func newDecoder(b []byte) *wire.Decoder { return wire.NewDecoder(b, wireErrors) }

// readHash reads a 32-byte hash.
func readHash(d *wire.Decoder, what string) Hash {
	var h Hash
	d.Fixed(h[:], what)
	return h
}
