package kme

import (
	"errors"
	"fmt"
	"net/http"
)

// Named errors. The client's *Error matches ErrBadRequest, ErrUnauthorized
// and ErrUnavailable with errors.Is according to its HTTP status.
var (
	ErrInvalidConfig = errors.New("qkd/kme: invalid config")
	ErrBadRequest    = errors.New("qkd/kme: bad request")
	ErrUnauthorized  = errors.New("qkd/kme: unauthorized")
	ErrUnavailable   = errors.New("qkd/kme: keys unavailable")
	ErrNoClientCert  = errors.New("qkd/kme: no verified client certificate")
	ErrInvalidSAEID  = errors.New("qkd/kme: invalid SAE ID")
	ErrUnknownPair   = errors.New("qkd/kme: unknown SAE pair")
	ErrKeyNotFound   = errors.New("qkd/kme: key not found")
	ErrInsufficient  = errors.New("qkd/kme: not enough key material")
	ErrPoolExists    = errors.New("qkd/kme: pool already exists")
	ErrProtocol      = errors.New("qkd/kme: unexpected response")
)

// Error is a non-200 answer from a KME, with the standard error body.
type Error struct {
	Status  int              `json:"-"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if len(e.Details) > 0 {
		return fmt.Sprintf("qkd/kme: %d %s: %s %v", e.Status, http.StatusText(e.Status), e.Message, e.Details)
	}
	return fmt.Sprintf("qkd/kme: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is maps the HTTP status onto the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}
