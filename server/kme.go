package server

import (
	"fmt"
	"strings"

	"qledger/api"
	"qledger/qkd/kme"
)

// ExternalKME points the gateway's key channel at a key manager in another
// process (any ETSI GS QKD 014 KME, such as a QKD device's, or another
// node's key manager service) instead of one served beside the node.
type ExternalKME struct {
	URL       string // https://host:port of the key manager; empty: none
	Cert, Key string // the gateway SAE's client certificate and key (PEM)
	CA        string // CA certificate verifying the key manager (PEM); empty: the system roots
}

// Validate checks an external key manager's settings; an empty URL is
// valid (none).
func (e ExternalKME) Validate() error {
	switch {
	case e.URL == "":
		return nil
	case !strings.HasPrefix(e.URL, "https://"):
		return fmt.Errorf("%w: key manager URL %q: want https:// (the gateway authenticates with its certificate)", ErrInvalidConfig, e.URL)
	case e.Cert == "" || e.Key == "":
		return fmt.Errorf("%w: an external key manager needs the gateway SAE's certificate and key", ErrInvalidConfig)
	}
	return nil
}

// KeyChannel returns the gateway's key channel using the key manager at
// e.URL as the SAE its certificate names, or nil if e.URL is empty.
func (e ExternalKME) KeyChannel() (*api.KeyChannel, error) {
	if err := e.Validate(); err != nil || e.URL == "" {
		return nil, err
	}
	c, sae, err := kme.DialSAE(e.URL, e.Cert, e.Key, e.CA)
	if err != nil {
		return nil, fmt.Errorf("server: key manager: %w", err)
	}
	return &api.KeyChannel{KME: c, GatewaySAE: sae}, nil
}
