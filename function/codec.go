package function

import "qledger/internal/wire"

// wireErrors names this package's errors for the shared codec.
var wireErrors = wire.Errors{Truncated: ErrTruncated, TooLarge: ErrTooLarge, Trailing: ErrTrailingBytes}

func newDecoder(b []byte) *wire.Decoder { return wire.NewDecoder(b, wireErrors) }
