package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// Role says which end of the session a Session is.
type Role uint8

// Roles.
const (
	RoleClient Role = 1
	RoleServer Role = 2
)

// Config sets the key rotation policy of the envelope.
type Config struct {
	// MaxMessages per direction and key epoch before rotation.
	MaxMessages uint64
	// MaxBytes of plaintext per direction and key epoch before rotation.
	MaxBytes uint64
}

// DefaultConfig rotates after 2^20 messages or 1 GiB, far inside AES-GCM's
// limits for one key.
func DefaultConfig() Config { return Config{MaxMessages: 1 << 20, MaxBytes: 1 << 30} }

// Validate rejects zero limits.
func (c Config) Validate() error {
	if c.MaxMessages == 0 || c.MaxBytes == 0 {
		return fmt.Errorf("%w: rotation after %d messages / %d bytes", ErrInvalidConfig, c.MaxMessages, c.MaxBytes)
	}
	return nil
}

// Envelope layout: version(1) | session ID(16) | epoch(4) | sequence(8) |
// AES-256-GCM ciphertext and tag. The header is authenticated data.
const (
	headerSize   = 1 + SessionIDSize + 4 + 8
	overheadSize = headerSize + 16
)

// Header is the clear part of an envelope.
type Header struct {
	Version   uint8
	SessionID [SessionIDSize]byte
	Epoch     uint32
	Seq       uint64
}

// ParseHeader reads an envelope's header without decrypting it (for
// routing to the right session).
func ParseHeader(msg []byte) (Header, error) {
	if len(msg) < overheadSize {
		return Header{}, fmt.Errorf("%w: envelope of %d bytes", ErrMalformed, len(msg))
	}
	if msg[0] != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, msg[0])
	}
	var h Header
	h.Version = msg[0]
	copy(h.SessionID[:], msg[1:])
	h.Epoch = binary.BigEndian.Uint32(msg[1+SessionIDSize:])
	h.Seq = binary.BigEndian.Uint64(msg[5+SessionIDSize:])
	return h, nil
}

// direction is one way of traffic: its current key epoch and counters.
type direction struct {
	mu     sync.Mutex
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	epoch  uint32
	seq    uint64 // next sequence number
	msgs   uint64 // in this epoch
	bytes  uint64 // in this epoch
}

func newDirection(sk []byte, label string) (*direction, error) {
	secret, err := hkdf.Expand(sha256.New, sk, label, 32)
	if err != nil {
		return nil, err
	}
	d := &direction{secret: secret}
	return d, d.install()
}

func (d *direction) install() error {
	key, err := hkdf.Expand(sha256.New, d.secret, "key", 32)
	if err != nil {
		return err
	}
	iv, err := hkdf.Expand(sha256.New, d.secret, "iv", 12)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return err
	}
	if d.aead, err = cipher.NewGCM(block); err != nil {
		return err
	}
	copy(d.iv[:], iv)
	return nil
}

// account counts a message and rotates the key when the policy says so.
func (d *direction) account(n int, cfg Config) error {
	d.seq++
	d.msgs++
	d.bytes += uint64(n)
	if d.msgs < cfg.MaxMessages && d.bytes < cfg.MaxBytes {
		return nil
	}
	if d.epoch == math.MaxUint32 {
		return ErrExhausted
	}
	next, err := hkdf.Expand(sha256.New, d.secret, "rotate", 32)
	if err != nil {
		return err
	}
	clear(d.secret)
	d.secret, d.epoch, d.msgs, d.bytes = next, d.epoch+1, 0, 0
	return d.install()
}

func (d *direction) nonce(seq uint64) []byte {
	n := d.iv
	for i := 0; i < 8; i++ {
		n[4+i] ^= byte(seq >> (56 - 8*i))
	}
	return n[:]
}

// Session is one end of an established session. Seal and Open may be
// called concurrently with each other; each direction is serialized.
type Session struct {
	role Role
	key  []byte
	th   []byte
	id   [SessionIDSize]byte
	cfg  Config
	send *direction
	recv *direction
}

func newSession(role Role, sk, id, th []byte, cfg Config) (*Session, error) {
	c2s, err := newDirection(sk, "c2s traffic")
	if err != nil {
		return nil, err
	}
	s2c, err := newDirection(sk, "s2c traffic")
	if err != nil {
		return nil, err
	}
	s := &Session{role: role, key: sk, th: th, cfg: cfg, send: c2s, recv: s2c}
	if role == RoleServer {
		s.send, s.recv = s2c, c2s
	}
	copy(s.id[:], id)
	return s, nil
}

// ID is the session ID, public and derived from the key.
func (s *Session) ID() [SessionIDSize]byte { return s.id }

// Role says which end this is.
func (s *Session) Role() Role { return s.role }

// Key returns a copy of the session key SK (input to ElectionKey).
func (s *Session) Key() []byte { return append([]byte(nil), s.key...) }

// ElectionKey derives the election key of a request from this session.
func (s *Session) ElectionKey(requestID string) ([32]byte, error) {
	return ElectionKey(s.key, requestID)
}

// Seal encrypts plaintext as the next message in this end's sending
// direction, binding aad (which the receiver must pass to Open).
func (s *Session) Seal(plaintext, aad []byte) ([]byte, error) {
	d := s.send
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seq == math.MaxUint64 {
		return nil, ErrExhausted
	}
	out := make([]byte, headerSize, overheadSize+len(plaintext))
	out[0] = Version
	copy(out[1:], s.id[:])
	binary.BigEndian.PutUint32(out[1+SessionIDSize:], d.epoch)
	binary.BigEndian.PutUint64(out[5+SessionIDSize:], d.seq)
	ad := append(out[:headerSize:headerSize], aad...)
	out = d.aead.Seal(out, d.nonce(d.seq), plaintext, ad)
	if err := d.account(len(plaintext), s.cfg); err != nil {
		return nil, err
	}
	return out, nil
}

// Open decrypts the next message of the peer's sending direction. It
// accepts only the next sequence number in the current epoch; on any error
// the state is unchanged, so a rejected message does not disturb the
// session.
func (s *Session) Open(msg, aad []byte) ([]byte, error) {
	h, err := ParseHeader(msg)
	if err != nil {
		return nil, err
	}
	if h.SessionID != s.id {
		return nil, ErrWrongSession
	}
	d := s.recv
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case h.Seq < d.seq:
		return nil, fmt.Errorf("%w: sequence %d, expected %d", ErrReplay, h.Seq, d.seq)
	case h.Seq > d.seq:
		return nil, fmt.Errorf("%w: sequence %d, expected %d", ErrReorder, h.Seq, d.seq)
	case h.Epoch != d.epoch:
		return nil, fmt.Errorf("%w: key epoch %d, expected %d", ErrAuth, h.Epoch, d.epoch)
	}
	ad := append(append([]byte(nil), msg[:headerSize]...), aad...)
	pt, err := d.aead.Open(nil, d.nonce(h.Seq), msg[headerSize:], ad)
	if err != nil {
		return nil, ErrAuth
	}
	if err := d.account(len(pt), s.cfg); err != nil {
		return nil, err
	}
	return pt, nil
}

// Epochs returns the current key epochs of the sending and receiving
// directions (for tests and metrics).
func (s *Session) Epochs() (send, recv uint32) {
	s.send.mu.Lock()
	send = s.send.epoch
	s.send.mu.Unlock()
	s.recv.mu.Lock()
	recv = s.recv.epoch
	s.recv.mu.Unlock()
	return send, recv
}
