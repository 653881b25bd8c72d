package qkd

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Transport carries one of Bob's requests to Alice and returns her reply.
// A reply may be empty only for an Abort notification. Implementations
// decide how (in process, HTTP, a socket); the messages authenticate
// themselves.
type Transport interface {
	RoundTrip(ctx context.Context, req []byte) ([]byte, error)
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(ctx context.Context, req []byte) ([]byte, error)

// RoundTrip calls f.
func (f TransportFunc) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	return f(ctx, req)
}

// LocalTransport connects Bob to an Alice in the same process.
func LocalTransport(a *Alice) Transport {
	return TransportFunc(func(_ context.Context, req []byte) ([]byte, error) {
		reply, _ := a.Handle(req) // Alice records her own error
		return reply, nil
	})
}

// Key is one output key with the ID both endpoints agreed on.
type Key struct {
	ID    uuid.UUID
	Bytes []byte
}

// BlockResult is one endpoint's outcome of a completed full-mode block.
type BlockResult struct {
	// Output is the privacy-amplified key: AuthRefill bits to top up the
	// authentication store, then len(KeyIDs) keys of KeyBits bits.
	Output     *Bits
	AuthRefill int
	KeyIDs     [][16]byte
	Stats      Stats
}

// Split cuts the output into the authentication refill bytes and the keys.
func (r BlockResult) Split(keyBits int) (refill []byte, keys []Key) {
	if r.Output == nil {
		return nil, nil
	}
	refill = r.Output.Slice(0, r.AuthRefill).Bytes()
	for i, id := range r.KeyIDs {
		s := r.AuthRefill + i*keyBits
		keys = append(keys, Key{ID: uuid.UUID(id), Bytes: r.Output.Slice(s, s+keyBits).Bytes()})
	}
	return refill, keys
}

// abortCodes maps errors to the code carried by an Abort message.
var abortCodes = [...]error{nil, ErrQBERTooHigh, ErrVerifyFailed, ErrAuthFailed, ErrMalformed,
	ErrUnexpectedMessage, ErrMismatch, ErrTooFewBits, ErrNoSecretKey, ErrAuthKeyExhausted, ErrClosed,
	ErrCheckFailed}

func abortCode(err error) int {
	for i, e := range abortCodes {
		if e != nil && errors.Is(err, e) {
			return i
		}
	}
	return 0
}

// abortErr wraps a local reason as an abort.
func abortErr(err error) error {
	if errors.Is(err, ErrAborted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrAborted, err)
}

// peerAbortErr turns a received Abort message into an error.
func peerAbortErr(m *Message) error {
	if m.Length > 0 && m.Length < len(abortCodes) {
		return fmt.Errorf("%w: %w: %w (peer said %q)", ErrAborted, ErrPeerAborted, abortCodes[m.Length], m.Reason)
	}
	return fmt.Errorf("%w: %w: %q", ErrAborted, ErrPeerAborted, m.Reason)
}

// outputPlan splits a secure length l into the authentication refill and
// whole keys: the refill tops the pad store back up to reserve bytes after
// the block (availAfter bytes remain), the rest is cut into keys. Both
// endpoints compute it from shared values.
func outputPlan(l, reserve, availAfter, keyBits int) (refillBits, keys int) {
	need := reserve - availAfter
	if need < 0 {
		need = 0
	}
	need = (need + padBytes - 1) / padBytes * padBytes
	refillBits = 8 * need
	if refillBits >= l {
		// Whole pads only.
		return l / (8 * padBytes) * (8 * padBytes), 0
	}
	return refillBits, (l - refillBits) / keyBits
}

// blockRandomness returns the named stream for one block.
func blockStream(seed []byte, block uint64, name string) source {
	if seed == nil {
		return newCryptoSource()
	}
	return randomness{seed: append(append([]byte(nil), seed...), byte(block>>56), byte(block>>48),
		byte(block>>40), byte(block>>32), byte(block>>24), byte(block>>16), byte(block>>8), byte(block))}.stream(name)
}

func randomSeed(src source) []byte {
	b := make([]byte, 32)
	for i := 0; i < 32; i += 8 {
		v := src.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
