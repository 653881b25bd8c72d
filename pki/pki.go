// Package pki is qledger's small certificate authority: it creates a
// cluster root (ECDSA P-256) and issues leaf certificates for servers and
// clients, kept as PEM files in a directory.
//
// The same CA serves every TLS endpoint that needs mutual authentication:
// today the ETSI GS QKD 014 key manager (the caller's SAE ID is its client
// certificate's Common Name); node, role and API certificates build on it.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors.
var (
	ErrNoCA    = errors.New("pki: no certificate authority in the directory")
	ErrBadName = errors.New("pki: invalid certificate name")
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte
}

// NewCA creates a self-signed root valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	return newCA(name, time.Now().Add(-time.Minute), time.Now().Add(validity))
}

func newCA(name string, notBefore, notAfter time.Time) (*CA, error) {
	if name == "" {
		return nil, ErrBadName
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"qledger"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// Pool is a cert pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf describes a certificate to issue.
type Leaf struct {
	// CommonName is the subject name; for key-manager clients, the SAE ID.
	CommonName string
	// Server and Client select the extended key usages.
	Server, Client bool
	// Hosts are DNS names or IP addresses for a server certificate.
	Hosts    []string
	Validity time.Duration
	// Role, when set, is written as a URI SAN (see IdentityOf). A node
	// certificate also needs NodeID and gets both key usages.
	Role Role
	// NodeID is the node's 256-bit ID, 64 hex digits, for RoleNode.
	NodeID string
	// Expires, when set, is the end of validity instead of now+Validity
	// (a time in the past issues an expired certificate, for tests).
	Expires time.Time
}

// Issued is a certificate and its key.
type Issued struct {
	TLS     tls.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue signs a leaf certificate.
func (ca *CA) Issue(l Leaf) (Issued, error) {
	if l.Role == RoleNode {
		l.Server, l.Client = true, true
		l.NodeID = strings.ToLower(l.NodeID)
		if !validNodeID(l.NodeID) {
			return Issued{}, fmt.Errorf("%w: %q", ErrBadNodeID, l.NodeID)
		}
	} else if l.NodeID != "" {
		return Issued{}, fmt.Errorf("%w: a node ID belongs on a node certificate only", ErrBadRole)
	}
	if l.Role != "" {
		if _, err := ParseRole(string(l.Role)); err != nil {
			return Issued{}, err
		}
	}
	if l.CommonName == "" || (!l.Server && !l.Client) {
		return Issued{}, fmt.Errorf("%w: need a common name and a server or client usage", ErrBadName)
	}
	if l.Validity <= 0 {
		l.Validity = 365 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	notBefore, notAfter := time.Now().Add(-time.Minute), time.Now().Add(l.Validity)
	if !l.Expires.IsZero() {
		notAfter = l.Expires
		if !notBefore.Before(notAfter) {
			notBefore = notAfter.Add(-time.Hour)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: []string{"qledger"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if l.Role != "" {
		tmpl.URIs = append(tmpl.URIs, roleURI(l.Role))
	}
	if l.NodeID != "" {
		tmpl.URIs = append(tmpl.URIs, nodeURI(l.NodeID))
	}
	for _, h := range l.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	out := Issued{
		CertPEM: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.PEM...),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
	out.TLS, err = tls.X509KeyPair(out.CertPEM, out.KeyPEM)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	return out, nil
}

// Save writes the CA certificate and key as ca.pem and ca-key.pem in dir.
func (ca *CA) Save(dir string) error {
	kder, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writePrivate(filepath.Join(dir, "ca-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// LoadCA reads ca.pem and ca-key.pem from dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCA, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCA, err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%w: %s holds no PEM", ErrNoCA, dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: ca.pem: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: ca-key.pem: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: ca.pem is not a CA certificate", ErrNoCA)
	}
	return &CA{Cert: cert, key: key, PEM: certPEM}, nil
}

// Save writes name.pem (certificate chain) and name-key.pem in dir.
func (i Issued) Save(dir, name string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), i.CertPEM, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writePrivate(filepath.Join(dir, name+"-key.pem"), i.KeyPEM)
}

func writePrivate(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("pki: %s holds no certificate", path)
	}
	return p, nil
}
