package qkd

import "errors"

// Errors returned by this package. Abort errors are wrapped together with
// ErrAborted, so errors.Is(err, ErrAborted) holds for every protocol abort
// and errors.Is(err, ErrQBERTooHigh) (for example) names the reason.
var (
	// ErrInvalidConfig reports a configuration value out of range.
	ErrInvalidConfig = errors.New("qkd: invalid config")
	// ErrAborted is wrapped by every error that ends a block without a key.
	ErrAborted = errors.New("qkd: protocol aborted")
	// ErrQBERTooHigh: the estimated QBER exceeds the abort threshold.
	ErrQBERTooHigh = errors.New("qkd: QBER above threshold")
	// ErrCheckFailed: paper mode found a mismatching check bit.
	ErrCheckFailed = errors.New("qkd: check bits mismatch")
	// ErrTooFewBits: not enough sifted bits to estimate or to extract a key.
	ErrTooFewBits = errors.New("qkd: too few bits")
	// ErrNoSecretKey: the finite-key length is zero or negative.
	ErrNoSecretKey = errors.New("qkd: no secret key at this length and QBER")
	// ErrVerifyFailed: the verification hash of the reconciled keys differs.
	ErrVerifyFailed = errors.New("qkd: verification hash mismatch")
	// ErrAuthFailed: a classical message failed authentication.
	ErrAuthFailed = errors.New("qkd: message authentication failed")
	// ErrAuthKeyExhausted: not enough authentication key material is left.
	ErrAuthKeyExhausted = errors.New("qkd: authentication key exhausted")
	// ErrMalformed: a classical message could not be decoded.
	ErrMalformed = errors.New("qkd: malformed message")
	// ErrUnexpectedMessage: a well-formed message arrived out of protocol order.
	ErrUnexpectedMessage = errors.New("qkd: unexpected message")
	// ErrPeerAborted: the other endpoint aborted and said why.
	ErrPeerAborted = errors.New("qkd: peer aborted")
	// ErrMismatch: the endpoints disagree on a value both compute.
	ErrMismatch = errors.New("qkd: endpoints disagree")
	// ErrKeyMismatch: the final keys differ (never expected; a bug guard).
	ErrKeyMismatch = errors.New("qkd: final keys differ")
	// ErrBadHex: a hex string is not valid bit input.
	ErrBadHex = errors.New("qkd: bad hex")
	// ErrClosed: the endpoint already finished or aborted this block.
	ErrClosed = errors.New("qkd: endpoint closed")
)
