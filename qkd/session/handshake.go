package session

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Labels of the key schedule.
const (
	labelTranscript   = "qledger/session/v1"
	labelSessionKey   = "qledger session key v1"
	labelSessionID    = "qledger session id v1"
	labelServerFinish = "qledger server finished v1"
	labelClientFinish = "qledger client finished v1"
	labelElection     = "qledger election key v1\x00"
)

// transcriptHash binds the key ID, the encapsulation key and the ciphertext.
func transcriptHash(keyID string, ek, ct []byte) []byte {
	h := sha256.New()
	h.Write([]byte(labelTranscript))
	for _, f := range [][]byte{[]byte(keyID), ek, ct} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(f)))
		h.Write(l[:])
		h.Write(f)
	}
	return h.Sum(nil)
}

// DeriveSessionKey is the combiner: HKDF-SHA256 with secret qkdKey||mlkemSecret
// and salt = the transcript hash of (keyID, ek, ct).
func DeriveSessionKey(qkdKey, mlkemSecret []byte, keyID string, ek, ct []byte) ([]byte, error) {
	if len(qkdKey) < MinQKDKeyBytes {
		return nil, fmt.Errorf("%w: %d bytes < %d", ErrShortKey, len(qkdKey), MinQKDKeyBytes)
	}
	secret := make([]byte, 0, len(qkdKey)+len(mlkemSecret))
	secret = append(append(secret, qkdKey...), mlkemSecret...)
	defer clear(secret)
	return hkdf.Key(sha256.New, secret, transcriptHash(keyID, ek, ct), labelSessionKey, 32)
}

func confirm(sk, th []byte, label string) ([]byte, error) {
	k, err := hkdf.Expand(sha256.New, sk, label, 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k)
	m.Write(th)
	return m.Sum(nil), nil
}

func sessionID(sk []byte) ([]byte, error) {
	return hkdf.Expand(sha256.New, sk, labelSessionID, SessionIDSize)
}

// ClientHandshake is the client's state between ClientHello and
// ServerHello. Use it once.
type ClientHandshake struct {
	keyID  string
	qkdKey []byte
	dk     *mlkem.DecapsulationKey768
	hello  ClientHello
	done   bool
}

// NewClientHandshake starts a handshake with the QKD key the client took
// from the KME (its ID and bytes) and returns the hello to send.
func NewClientHandshake(keyID string, qkdKey []byte) (*ClientHandshake, ClientHello, error) {
	if len(qkdKey) < MinQKDKeyBytes {
		return nil, ClientHello{}, fmt.Errorf("%w: %d bytes < %d", ErrShortKey, len(qkdKey), MinQKDKeyBytes)
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, ClientHello{}, fmt.Errorf("qkd/session: ML-KEM key: %w", err)
	}
	hello := ClientHello{Version: Version, KeyID: keyID, EncapsulationKey: dk.EncapsulationKey().Bytes()}
	if err := hello.Validate(); err != nil {
		return nil, ClientHello{}, err
	}
	return &ClientHandshake{keyID: keyID, qkdKey: append([]byte(nil), qkdKey...), dk: dk, hello: hello}, hello, nil
}

// Finish processes the gateway's answer: it decapsulates, derives the
// session key, checks the gateway's confirmation and returns the client's
// session and the finish message to send.
func (h *ClientHandshake) Finish(sh ServerHello, cfg Config) (*Session, ClientFinish, error) {
	if h.done {
		return nil, ClientFinish{}, ErrState
	}
	if err := cfg.Validate(); err != nil {
		return nil, ClientFinish{}, err
	}
	if err := sh.Validate(); err != nil {
		return nil, ClientFinish{}, err
	}
	h.done = true
	defer clear(h.qkdKey)
	ss, err := h.dk.Decapsulate(sh.Ciphertext)
	if err != nil {
		return nil, ClientFinish{}, fmt.Errorf("%w: decapsulate: %v", ErrMalformed, err)
	}
	th := transcriptHash(h.keyID, h.hello.EncapsulationKey, sh.Ciphertext)
	sk, err := DeriveSessionKey(h.qkdKey, ss, h.keyID, h.hello.EncapsulationKey, sh.Ciphertext)
	if err != nil {
		return nil, ClientFinish{}, err
	}
	want, err := confirm(sk, th, labelServerFinish)
	if err != nil {
		return nil, ClientFinish{}, err
	}
	id, err := sessionID(sk)
	if err != nil {
		return nil, ClientFinish{}, err
	}
	if !hmac.Equal(want, sh.Confirm) || !hmac.Equal(id, sh.SessionID) {
		return nil, ClientFinish{}, ErrConfirm
	}
	cc, err := confirm(sk, th, labelClientFinish)
	if err != nil {
		return nil, ClientFinish{}, err
	}
	s, err := newSession(RoleClient, sk, id, th, cfg)
	if err != nil {
		return nil, ClientFinish{}, err
	}
	return s, ClientFinish{Version: Version, SessionID: id, Confirm: cc}, nil
}

// Accept is the gateway's side: given the client's hello and the QKD key
// it fetched for hello.KeyID, it encapsulates to the client's key and
// returns the gateway's session and the answer to send.
func Accept(hello ClientHello, qkdKey []byte, cfg Config) (*Session, ServerHello, error) {
	if err := cfg.Validate(); err != nil {
		return nil, ServerHello{}, err
	}
	if err := hello.Validate(); err != nil {
		return nil, ServerHello{}, err
	}
	ek, err := mlkem.NewEncapsulationKey768(hello.EncapsulationKey)
	if err != nil {
		return nil, ServerHello{}, fmt.Errorf("%w: encapsulation key: %v", ErrMalformed, err)
	}
	ss, ct := ek.Encapsulate()
	sk, err := DeriveSessionKey(qkdKey, ss, hello.KeyID, hello.EncapsulationKey, ct)
	clear(ss)
	if err != nil {
		return nil, ServerHello{}, err
	}
	th := transcriptHash(hello.KeyID, hello.EncapsulationKey, ct)
	id, err := sessionID(sk)
	if err != nil {
		return nil, ServerHello{}, err
	}
	sc, err := confirm(sk, th, labelServerFinish)
	if err != nil {
		return nil, ServerHello{}, err
	}
	s, err := newSession(RoleServer, sk, id, th, cfg)
	if err != nil {
		return nil, ServerHello{}, err
	}
	return s, ServerHello{Version: Version, SessionID: id, Ciphertext: ct, Confirm: sc}, nil
}

// VerifyFinish checks the client's confirmation (gateway side).
func (s *Session) VerifyFinish(f ClientFinish) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if !hmac.Equal(f.SessionID, s.id[:]) {
		return ErrWrongSession
	}
	want, err := confirm(s.key, s.th, labelClientFinish)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, f.Confirm) {
		return ErrConfirm
	}
	return nil
}

// ElectionKey is HKDF-SHA256(sessionKey, info = label || requestID): the
// per-request key of the XOR-stake election.
func ElectionKey(sessionKey []byte, requestID string) ([32]byte, error) {
	var out [32]byte
	if len(sessionKey) < MinQKDKeyBytes {
		return out, fmt.Errorf("%w: session key of %d bytes", ErrShortKey, len(sessionKey))
	}
	k, err := hkdf.Key(sha256.New, sessionKey, nil, labelElection+requestID, 32)
	if err != nil {
		return out, err
	}
	copy(out[:], k)
	return out, nil
}
