package chain

import "fmt"

// MarshalText writes the hash as lowercase hex, so JSON shows it that way.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return fmt.Errorf("chain: hash: %w", err)
	}
	*h = v
	return nil
}
