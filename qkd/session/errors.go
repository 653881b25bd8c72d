package session

import "errors"

// Named errors.
var (
	ErrInvalidConfig = errors.New("qkd/session: invalid config")
	ErrShortKey      = errors.New("qkd/session: QKD key too short")
	ErrMalformed     = errors.New("qkd/session: malformed message")
	ErrVersion       = errors.New("qkd/session: unsupported version")
	ErrConfirm       = errors.New("qkd/session: key confirmation failed")
	ErrWrongSession  = errors.New("qkd/session: message for another session")
	ErrReplay        = errors.New("qkd/session: replayed message")
	ErrReorder       = errors.New("qkd/session: message out of order")
	ErrAuth          = errors.New("qkd/session: message authentication failed")
	ErrExhausted     = errors.New("qkd/session: session exhausted")
	ErrState         = errors.New("qkd/session: handshake already finished")
)
