package function

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"qledger/internal/wire"
)

// Protocol limits. They bound what a Spec may ask for and are part of the
// deploy transaction's validity, so they must be the same on every node.
const (
	MaxNameLen     = 64
	MaxVersionLen  = 32
	MaxMemoryPages = 16384 // 1 GiB of linear memory (64 KiB pages)
	MaxTimeout     = time.Minute
	MinTimeout     = time.Millisecond
	MaxOutputLimit = 16 << 20 // largest MaxOutputBytes
	MaxStderrLimit = 1 << 20  // largest MaxStderrBytes
	MaxCodeBytes   = 16 << 20 // largest module
	MaxInputBytes  = 16 << 20 // largest request payload
	CodeHashSize   = sha256.Size
	PageSize       = 65536
	specVersion    = 1
	deployVersion  = 1
	// specVersionPolicy and deployVersionPolicy add the unverified
	// policy byte; they are written only when it is not the default, so
	// every earlier spec keeps its encoding.
	specVersionPolicy   = 2
	deployVersionPolicy = 2
	specBodyMinSize     = 1 + 1 + CodeHashSize + 4 + 8 + 4 + 4
)

// Spec describes a deployed function: its identity and its limits. It is
// the metadata of a deploy transaction (see Deployment) and what the
// runtime (execute.Runtime.Invoke) applies to each call. The zero value is not valid; use Validate.
type Spec struct {
	// Name identifies the function: 1..64 bytes of a-z, 0-9, '.', '_' and
	// '-', starting with a letter or digit.
	Name string `json:"name"`
	// Version labels this deployment of Name: 1..32 bytes of A-Z, a-z,
	// 0-9, '.', '_', '+' and '-'.
	Version string `json:"version"`
	// CodeHash is the SHA-256 of the module bytes.
	CodeHash [CodeHashSize]byte `json:"code_hash"`
	// MemoryPages is the most linear memory, in 64 KiB pages, the function
	// may have at any time: 1..MaxMemoryPages.
	MemoryPages uint32 `json:"memory_pages"`
	// Timeout is the wall-clock budget of one call (instantiation included):
	// MinTimeout..MaxTimeout.
	Timeout time.Duration `json:"timeout"`
	// MaxOutputBytes is the most the function may write to stdout:
	// 0..MaxOutputLimit. Writing more is the output-limit outcome.
	MaxOutputBytes uint32 `json:"max_output_bytes"`
	// MaxStderrBytes is how much of stderr is kept: 0..MaxStderrLimit.
	// More is discarded and flagged, never an error.
	MaxStderrBytes uint32 `json:"max_stderr_bytes"`
	// Unverified is what an invocation does when no verifier can run it
	// (UnverifiedAccept, the default, or UnverifiedRefuse).
	Unverified UnverifiedPolicy `json:"unverified,omitempty"`
}

// DefaultSpec returns a Spec for the module code with the given name and
// version and moderate limits: 256 pages (16 MiB), 5 s, 1 MiB of stdout and
// 64 KiB of stderr.
func DefaultSpec(name, version string, code []byte) Spec {
	return Spec{
		Name:           name,
		Version:        version,
		CodeHash:       sha256.Sum256(code),
		MemoryPages:    256,
		Timeout:        5 * time.Second,
		MaxOutputBytes: 1 << 20,
		MaxStderrBytes: 64 << 10,
	}
}

// Validate checks every field against the protocol limits. Errors wrap
// ErrInvalidSpec.
func (s Spec) Validate() error {
	switch {
	case !validName(s.Name):
		return fmt.Errorf("%w: name %q (1..%d of a-z 0-9 . _ -, starting with a letter or digit)", ErrInvalidSpec, s.Name, MaxNameLen)
	case !validVersion(s.Version):
		return fmt.Errorf("%w: version %q (1..%d of A-Z a-z 0-9 . _ + -)", ErrInvalidSpec, s.Version, MaxVersionLen)
	case s.MemoryPages == 0 || s.MemoryPages > MaxMemoryPages:
		return fmt.Errorf("%w: memory pages %d (1..%d)", ErrInvalidSpec, s.MemoryPages, MaxMemoryPages)
	case s.Timeout < MinTimeout || s.Timeout > MaxTimeout:
		return fmt.Errorf("%w: timeout %s (%s..%s)", ErrInvalidSpec, s.Timeout, MinTimeout, MaxTimeout)
	case s.MaxOutputBytes > MaxOutputLimit:
		return fmt.Errorf("%w: max output bytes %d (at most %d)", ErrInvalidSpec, s.MaxOutputBytes, MaxOutputLimit)
	case s.MaxStderrBytes > MaxStderrLimit:
		return fmt.Errorf("%w: max stderr bytes %d (at most %d)", ErrInvalidSpec, s.MaxStderrBytes, MaxStderrLimit)
	case !s.Unverified.Valid():
		return fmt.Errorf("%w: unverified policy %d", ErrInvalidSpec, s.Unverified)
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	if len(s) == 0 || len(s) > MaxVersionLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return true
}

// CodeHashString is the code hash in lowercase hex.
func (s Spec) CodeHashString() string { return hex.EncodeToString(s.CodeHash[:]) }

// MarshalBinary returns the canonical encoding of a valid Spec:
//
//	u8  version (1)
//	u8  len(Name)    || Name
//	u8  len(Version) || Version
//	[32]CodeHash
//	u32 MemoryPages
//	u64 Timeout in nanoseconds
//	u32 MaxOutputBytes
//	u32 MaxStderrBytes
//	u8  Unverified    (version 2 only)
//
// Version 2 is written only for a non-default Unverified policy, so a
// spec without one keeps its version 1 encoding. Integers are big-endian.
// Every valid Spec has exactly one encoding.
func (s Spec) MarshalBinary() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	e := &wire.Encoder{B: make([]byte, 0, specBodyMinSize+len(s.Name)+len(s.Version)+1)}
	e.U8(s.version(specVersion, specVersionPolicy))
	s.encodeBody(e)
	return e.B, nil
}

// version returns v1 for the default policy, v2 otherwise.
func (s Spec) version(v1, v2 uint8) uint8 {
	if s.Unverified != UnverifiedAccept {
		return v2
	}
	return v1
}

func (s Spec) encodeBody(e *wire.Encoder) {
	e.Bytes8([]byte(s.Name))
	e.Bytes8([]byte(s.Version))
	e.Raw(s.CodeHash[:])
	e.U32(s.MemoryPages)
	e.U64(uint64(s.Timeout))
	e.U32(s.MaxOutputBytes)
	e.U32(s.MaxStderrBytes)
	if s.Unverified != UnverifiedAccept {
		e.U8(uint8(s.Unverified))
	}
}

// UnmarshalBinary decodes what MarshalBinary wrote and validates the
// result. It rejects unknown versions, trailing bytes and oversize fields.
func (s *Spec) UnmarshalBinary(b []byte) error {
	d := newDecoder(b)
	v := d.U8("spec version")
	if d.Err() == nil && v != specVersion && v != specVersionPolicy {
		return fmt.Errorf("%w: spec version %d", ErrUnknownVersion, v)
	}
	out := decodeSpecBody(d, v == specVersionPolicy)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("function: decode spec: %w", err)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// decodeSpecBody reads a spec body; withPolicy (version 2) reads the
// policy byte, which must then not be the default (one encoding per spec).
func decodeSpecBody(d *wire.Decoder, withPolicy bool) Spec {
	var s Spec
	s.Name = string(d.Bytes8("name", MaxNameLen))
	s.Version = string(d.Bytes8("version", MaxVersionLen))
	copy(s.CodeHash[:], d.Take(CodeHashSize, "code hash"))
	s.MemoryPages = d.U32("memory pages")
	t := d.U64("timeout")
	if d.Err() == nil && t > uint64(MaxTimeout) {
		d.Fail(fmt.Errorf("%w: timeout of %d ns", ErrTooLarge, t))
	}
	s.Timeout = time.Duration(t)
	s.MaxOutputBytes = d.U32("max output bytes")
	s.MaxStderrBytes = d.U32("max stderr bytes")
	if withPolicy {
		s.Unverified = UnverifiedPolicy(d.U8("unverified policy"))
		if d.Err() == nil && s.Unverified == UnverifiedAccept {
			d.Fail(fmt.Errorf("%w: version 2 spec with the default policy", ErrInvalidSpec))
		}
	}
	return s
}

// Deployment is the payload of a deploy transaction: a Spec and the module
// bytes it describes.
type Deployment struct {
	Spec Spec
	Code []byte
}

// Validate checks the Spec and that Code is 1..MaxCodeBytes long and hashes
// to Spec.CodeHash. It does not compile the module (see
// execute.Runtime.Deploy).
func (d Deployment) Validate() error {
	if err := d.Spec.Validate(); err != nil {
		return err
	}
	if len(d.Code) == 0 {
		return ErrEmptyCode
	}
	if len(d.Code) > MaxCodeBytes {
		return fmt.Errorf("%w: module of %d bytes (at most %d)", ErrTooLarge, len(d.Code), MaxCodeBytes)
	}
	if h := sha256.Sum256(d.Code); !bytes.Equal(h[:], d.Spec.CodeHash[:]) {
		return fmt.Errorf("%w: sha256 %x, spec says %x", ErrCodeHash, h, d.Spec.CodeHash)
	}
	return nil
}

// MarshalBinary returns the canonical encoding of a valid Deployment:
//
//	u8  version (1; 2 with a non-default Unverified policy)
//	the Spec body (the Spec encoding without its version byte)
//	u32 len(Code) || Code
func (d Deployment) MarshalBinary() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	e := &wire.Encoder{B: make([]byte, 0, 1+specBodyMinSize+len(d.Spec.Name)+len(d.Spec.Version)+4+len(d.Code))}
	e.U8(d.Spec.version(deployVersion, deployVersionPolicy))
	d.Spec.encodeBody(e)
	e.U32(uint32(len(d.Code)))
	e.Raw(d.Code)
	return e.B, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote and validates the result,
// including the code hash. The decoded Code does not alias b.
func (d *Deployment) UnmarshalBinary(b []byte) error {
	dec := newDecoder(b)
	v := dec.U8("deployment version")
	if dec.Err() == nil && v != deployVersion && v != deployVersionPolicy {
		return fmt.Errorf("%w: deployment version %d", ErrUnknownVersion, v)
	}
	out := Deployment{Spec: decodeSpecBody(dec, v == deployVersionPolicy)}
	out.Code = bytes.Clone(dec.Bytes32("code", MaxCodeBytes))
	if err := dec.Finish(); err != nil {
		return fmt.Errorf("function: decode deployment: %w", err)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*d = out
	return nil
}
