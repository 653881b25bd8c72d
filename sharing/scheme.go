package sharing

import "fmt"

// Scheme selects how data is split. Its numeric value is the code written
// in the binary share encoding.
type Scheme uint8

const (
	// Paper is the SSDSM algorithm: the data, read as big integers in
	// chunks, is reduced modulo n public primes. Not confidential (a ramp
	// scheme); see the package documentation.
	Paper Scheme = 1
	// AsmuthBloom is the Asmuth-Bloom threshold scheme with a random
	// blinding factor, for secrets up to MaxSecretSize bytes. Every share is
	// as large as the secret plus about 17+t/8 bytes.
	AsmuthBloom Scheme = 2
	// Dispersal encrypts with AES-256-GCM under a fresh key, disperses the
	// ciphertext with Reed-Solomon (t data + n-t parity shards) and shares
	// the key with Asmuth-Bloom. The default.
	Dispersal Scheme = 3
)

// String returns the scheme's name: "paper", "asmuth-bloom" or "dispersal".
func (s Scheme) String() string {
	switch s {
	case Paper:
		return "paper"
	case AsmuthBloom:
		return "asmuth-bloom"
	case Dispersal:
		return "dispersal"
	}
	return fmt.Sprintf("scheme(%d)", uint8(s))
}

// Valid reports whether s is one of the three schemes.
func (s Scheme) Valid() bool { return s >= Paper && s <= Dispersal }

// ParseScheme returns the scheme with the given name. The empty name means
// the default, Dispersal.
func ParseScheme(name string) (Scheme, error) {
	switch name {
	case "paper":
		return Paper, nil
	case "asmuth-bloom":
		return AsmuthBloom, nil
	case "dispersal", "":
		return Dispersal, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownScheme, name)
}

// MarshalText implements encoding.TextMarshaler.
func (s Scheme) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownScheme, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. Unlike ParseScheme it
// refuses the empty name.
func (s *Scheme) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty name", ErrUnknownScheme)
	}
	v, err := ParseScheme(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
