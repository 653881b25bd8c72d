package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a certificate's holder may do in the cluster. It is carried
// in the certificate as a URI SAN "qledger:role:<role>".
type Role string

// Roles.
const (
	// RoleNode is a cluster node: it may use the raft and RPC port and
	// forward API requests for others.
	RoleNode Role = "node"
	// RoleSubmitter submits transactions, invocations and data, and reads
	// its own results and the shares it is a reader of.
	RoleSubmitter Role = "submitter"
	// RoleAuditor reads blocks, proofs, heads and verification results;
	// it never writes.
	RoleAuditor Role = "auditor"
	// RoleAdmin manages membership, functions and keys.
	RoleAdmin Role = "admin"
)

// Roles lists every role, in a fixed order.
var Roles = []Role{RoleNode, RoleSubmitter, RoleAuditor, RoleAdmin}

// ParseRole accepts the name of a role.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: %q (want node, submitter, auditor or admin)", ErrBadRole, s)
}

// More errors.
var (
	ErrBadRole      = errors.New("pki: unknown role")
	ErrNoIdentity   = errors.New("pki: certificate carries no qledger identity")
	ErrBadNodeID    = errors.New("pki: node ID must be 64 hex digits")
	ErrNotVerified  = errors.New("pki: certificate does not verify against the cluster CA")
	ErrBadSignature = errors.New("pki: bad signature")
)

const (
	uriScheme = "qledger"
	rolePath  = "role:"
	nodePath  = "node:"
)

func roleURI(r Role) *url.URL { return &url.URL{Scheme: uriScheme, Opaque: rolePath + string(r)} }
func nodeURI(id string) *url.URL {
	return &url.URL{Scheme: uriScheme, Opaque: nodePath + strings.ToLower(id)}
}

// Identity is who a verified certificate names.
type Identity struct {
	// Name is the certificate's subject common name.
	Name string `json:"name"`
	// Role is the certificate's role.
	Role Role `json:"role"`
	// NodeID is the node's 256-bit ID in hex, for node certificates.
	NodeID string `json:"node_id,omitempty"`
}

// String is "role:name".
func (i Identity) String() string { return string(i.Role) + ":" + i.Name }

// IdentityOf reads the role and node ID from a certificate's URI SANs. It
// does not verify the certificate; see Verify. A certificate naming two
// different roles or two different node IDs names no one: it fails with
// ErrNoIdentity rather than having one of them win by position.
func IdentityOf(c *x509.Certificate) (Identity, error) {
	id := Identity{Name: c.Subject.CommonName}
	for _, u := range c.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		switch {
		case strings.HasPrefix(u.Opaque, rolePath):
			r, err := ParseRole(strings.TrimPrefix(u.Opaque, rolePath))
			if err != nil {
				return Identity{}, err
			}
			if id.Role != "" && id.Role != r {
				return Identity{}, fmt.Errorf("%w: two roles", ErrNoIdentity)
			}
			id.Role = r
		case strings.HasPrefix(u.Opaque, nodePath):
			n := strings.TrimPrefix(u.Opaque, nodePath)
			if id.NodeID != "" && id.NodeID != n {
				return Identity{}, fmt.Errorf("%w: two node IDs", ErrNoIdentity)
			}
			id.NodeID = n
		}
	}
	switch {
	case id.Role == "":
		return Identity{}, fmt.Errorf("%w: no role", ErrNoIdentity)
	case id.Role == RoleNode && !validNodeID(id.NodeID):
		return Identity{}, fmt.Errorf("%w: node certificate without a valid node ID", ErrNoIdentity)
	case id.Role != RoleNode && id.NodeID != "":
		return Identity{}, fmt.Errorf("%w: node ID on a %s certificate", ErrNoIdentity, id.Role)
	}
	return id, nil
}

func validNodeID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Verify checks a peer's certificate chain (leaf first, as TLS presents it)
// against roots for the given key usage, and returns the leaf's identity.
func Verify(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrNotVerified)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	return IdentityOf(chain[0])
}
