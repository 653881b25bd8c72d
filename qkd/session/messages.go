package session

import (
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
)

// Version is the handshake and envelope version.
const Version = 1

// Sizes of the ML-KEM-768 values and of the other fixed fields.
const (
	EncapsulationKeySize = mlkem.EncapsulationKeySize768
	CiphertextSize       = mlkem.CiphertextSize768
	SessionIDSize        = 16
	ConfirmSize          = 32
	MaxKeyIDLen          = 256
	MinQKDKeyBytes       = 16
)

// ClientHello opens a handshake. JSON encodes byte fields as base64.
type ClientHello struct {
	Version          uint8  `json:"version"`
	KeyID            string `json:"key_id"`
	EncapsulationKey []byte `json:"encapsulation_key"`
}

// ServerHello answers a ClientHello.
type ServerHello struct {
	Version    uint8  `json:"version"`
	SessionID  []byte `json:"session_id"`
	Ciphertext []byte `json:"ciphertext"`
	Confirm    []byte `json:"confirm"`
}

// ClientFinish confirms the client's key to the gateway.
type ClientFinish struct {
	Version   uint8  `json:"version"`
	SessionID []byte `json:"session_id"`
	Confirm   []byte `json:"confirm"`
}

// Binary type bytes.
const (
	typeClientHello  = 1
	typeServerHello  = 2
	typeClientFinish = 3
)

// Validate checks field sizes.
func (m *ClientHello) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("%w: %d", ErrVersion, m.Version)
	case m.KeyID == "" || len(m.KeyID) > MaxKeyIDLen:
		return fmt.Errorf("%w: key ID of %d bytes", ErrMalformed, len(m.KeyID))
	case len(m.EncapsulationKey) != EncapsulationKeySize:
		return fmt.Errorf("%w: encapsulation key of %d bytes", ErrMalformed, len(m.EncapsulationKey))
	}
	return nil
}

// Validate checks field sizes.
func (m *ServerHello) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("%w: %d", ErrVersion, m.Version)
	case len(m.SessionID) != SessionIDSize || len(m.Ciphertext) != CiphertextSize || len(m.Confirm) != ConfirmSize:
		return fmt.Errorf("%w: server hello field sizes %d/%d/%d", ErrMalformed, len(m.SessionID), len(m.Ciphertext), len(m.Confirm))
	}
	return nil
}

// Validate checks field sizes.
func (m *ClientFinish) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("%w: %d", ErrVersion, m.Version)
	case len(m.SessionID) != SessionIDSize || len(m.Confirm) != ConfirmSize:
		return fmt.Errorf("%w: client finish field sizes %d/%d", ErrMalformed, len(m.SessionID), len(m.Confirm))
	}
	return nil
}

// MarshalBinary encodes version, type, then each field with a 2-byte length.
func (m *ClientHello) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return appendFields([]byte{m.Version, typeClientHello}, []byte(m.KeyID), m.EncapsulationKey), nil
}

// UnmarshalBinary decodes and validates.
func (m *ClientHello) UnmarshalBinary(b []byte) error {
	f, err := parseFields(b, typeClientHello, 2)
	if err != nil {
		return err
	}
	*m = ClientHello{Version: b[0], KeyID: string(f[0]), EncapsulationKey: f[1]}
	return m.Validate()
}

// MarshalBinary encodes version, type, then each field with a 2-byte length.
func (m *ServerHello) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return appendFields([]byte{m.Version, typeServerHello}, m.SessionID, m.Ciphertext, m.Confirm), nil
}

// UnmarshalBinary decodes and validates.
func (m *ServerHello) UnmarshalBinary(b []byte) error {
	f, err := parseFields(b, typeServerHello, 3)
	if err != nil {
		return err
	}
	*m = ServerHello{Version: b[0], SessionID: f[0], Ciphertext: f[1], Confirm: f[2]}
	return m.Validate()
}

// MarshalBinary encodes version, type, then each field with a 2-byte length.
func (m *ClientFinish) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return appendFields([]byte{m.Version, typeClientFinish}, m.SessionID, m.Confirm), nil
}

// UnmarshalBinary decodes and validates.
func (m *ClientFinish) UnmarshalBinary(b []byte) error {
	f, err := parseFields(b, typeClientFinish, 2)
	if err != nil {
		return err
	}
	*m = ClientFinish{Version: b[0], SessionID: f[0], Confirm: f[1]}
	return m.Validate()
}

func appendFields(b []byte, fields ...[]byte) []byte {
	for _, f := range fields {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

func parseFields(b []byte, typ byte, n int) ([][]byte, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if b[1] != typ {
		return nil, fmt.Errorf("%w: type %d, want %d", ErrMalformed, b[1], typ)
	}
	rest := b[2:]
	out := make([][]byte, n)
	for i := range out {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated field %d", ErrMalformed, i)
		}
		l := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if l > len(rest) {
			return nil, fmt.Errorf("%w: field %d of %d bytes, %d left", ErrMalformed, i, l, len(rest))
		}
		out[i] = append([]byte(nil), rest[:l]...)
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return out, nil
}
