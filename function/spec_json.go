package function

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

type specJSON struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	CodeHash       string `json:"code_hash"`
	MemoryPages    uint32 `json:"memory_pages"`
	Timeout        string `json:"timeout"`
	MaxOutputBytes uint32 `json:"max_output_bytes"`
	MaxStderrBytes uint32 `json:"max_stderr_bytes"`
	Unverified     string `json:"unverified,omitempty"`
}

// MarshalJSON writes the code hash as hex and the timeout as a Go duration
// string ("5s").
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(specJSON{
		Name:           s.Name,
		Version:        s.Version,
		CodeHash:       s.CodeHashString(),
		MemoryPages:    s.MemoryPages,
		Timeout:        s.Timeout.String(),
		MaxOutputBytes: s.MaxOutputBytes,
		MaxStderrBytes: s.MaxStderrBytes,
		Unverified:     policyJSON(s.Unverified),
	})
}

// UnmarshalJSON reads what MarshalJSON writes, refuses unknown fields and
// validates the result.
func (s *Spec) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j specJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	var out Spec
	h, err := hex.DecodeString(j.CodeHash)
	if err != nil || len(h) != CodeHashSize {
		return fmt.Errorf("%w: code hash must be %d hex digits", ErrInvalidSpec, 2*CodeHashSize)
	}
	copy(out.CodeHash[:], h)
	if out.Timeout, err = time.ParseDuration(j.Timeout); err != nil {
		return fmt.Errorf("%w: timeout: %v", ErrInvalidSpec, err)
	}
	out.Name, out.Version, out.MemoryPages = j.Name, j.Version, j.MemoryPages
	out.MaxOutputBytes, out.MaxStderrBytes = j.MaxOutputBytes, j.MaxStderrBytes
	if out.Unverified, err = ParseUnverifiedPolicy(j.Unverified); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// policyJSON leaves the default policy out, so earlier specs keep their
// JSON.
func policyJSON(p UnverifiedPolicy) string {
	if p == UnverifiedAccept {
		return ""
	}
	return p.String()
}
