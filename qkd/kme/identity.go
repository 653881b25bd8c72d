package kme

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
)

// MaxSAEIDLen bounds SAE IDs.
const MaxSAEIDLen = 128

// ValidateSAEID accepts 1 to 128 characters from the URL-unreserved set
// A-Z a-z 0-9 - . _ ~ (so an ID is a single path segment as is).
func ValidateSAEID(id string) error {
	if id == "" || len(id) > MaxSAEIDLen {
		return fmt.Errorf("%w: length %d not in [1, %d]", ErrInvalidSAEID, len(id), MaxSAEIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return fmt.Errorf("%w: character %q at %d", ErrInvalidSAEID, c, i)
		}
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidSAEID, id)
	}
	return nil
}

// ParseKeyID accepts only the canonical 36-character UUID form.
func ParseKeyID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.UUID{}, fmt.Errorf("%w: key ID %q is not a canonical UUID", ErrBadRequest, s)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("%w: key ID %q: %v", ErrBadRequest, s, err)
	}
	return id, nil
}

// SAEFromCertificate returns the Common Name of the caller's verified TLS
// client certificate. It fails if the connection is not TLS or the client
// sent no certificate that verified against the server's ClientCAs.
func SAEFromCertificate(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "", ErrNoClientCert
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName, nil
}
