package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// Credentials are one party's certificate, its key and the cluster CA, as
// TLS configurations for every port. Reload swaps in new files without a
// restart; connections made afterwards use them. Safe for concurrent use.
type Credentials struct {
	caFile, certFile, keyFile string

	mu       sync.RWMutex
	cert     *tls.Certificate
	pool     *x509.CertPool
	ident    Identity
	notAfter time.Time
}

// LoadCredentials reads the CA bundle, a certificate chain and its key
// (PEM files) and checks that the certificate verifies against the CA and
// carries a qledger identity.
func LoadCredentials(caFile, certFile, keyFile string) (*Credentials, error) {
	c := &Credentials{caFile: caFile, certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewCredentials builds credentials in memory (embedded clusters, tests).
// Reload then fails: there are no files to read.
func NewCredentials(caPEM []byte, cert tls.Certificate) (*Credentials, error) {
	c := &Credentials{}
	if err := c.set(caPEM, cert); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On error the old credentials stay.
func (c *Credentials) Reload() error {
	if c.certFile == "" {
		return fmt.Errorf("pki: credentials were not loaded from files")
	}
	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return c.set(caPEM, cert)
}

func (c *Credentials) set(caPEM []byte, cert tls.Certificate) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("pki: the CA bundle holds no certificate")
	}
	if len(cert.Certificate) == 0 {
		return fmt.Errorf("pki: no certificate")
	}
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		chain = append(chain, x)
	}
	usage := x509.ExtKeyUsageClientAuth
	ident, err := IdentityOf(chain[0])
	if err != nil {
		return err
	}
	if ident.Role == RoleNode {
		usage = x509.ExtKeyUsageServerAuth
	}
	if _, err := Verify(chain, pool, usage); err != nil {
		return err
	}
	notAfter := chainExpiry(chain, pool, usage)
	if _, ok := cert.PrivateKey.(crypto.Signer); !ok {
		return fmt.Errorf("pki: the private key cannot sign")
	}
	cert.Leaf = chain[0]
	c.mu.Lock()
	c.cert, c.pool, c.ident, c.notAfter = &cert, pool, ident, notAfter
	c.mu.Unlock()
	return nil
}

// chainExpiry is when the chain verified up to a root of pool stops
// being valid: the earliest NotAfter of the leaf, its intermediates and
// the root. chain must verify (see Verify).
func chainExpiry(chain []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) time.Time {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	end := chain[0].NotAfter
	verified, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil || len(verified) == 0 {
		return end
	}
	for _, c := range verified[0] {
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	return end
}

// NotAfter is when the current certificate stops being usable: the
// earliest end of validity of the certificate, its intermediates and the
// CA root it verifies against. Renew (and Reload) well before it.
func (c *Credentials) NotAfter() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.notAfter
}

// Identity is who the certificate names.
func (c *Credentials) Identity() Identity {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ident
}

// Pool is the cluster CA.
func (c *Credentials) Pool() *x509.CertPool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.pool
}

// Certificate is the current certificate chain and key.
func (c *Credentials) Certificate() *tls.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert
}

// ChainDER is the certificate chain, leaf first, as DER.
func (c *Credentials) ChainDER() [][]byte { return c.Certificate().Certificate }

// Sign signs SHA-256(msg) with the certificate's key (ASN.1 ECDSA for
// P-256 keys).
func (c *Credentials) Sign(msg []byte) ([]byte, error) {
	cert := c.Certificate()
	d := sha256.Sum256(msg)
	sig, err := cert.PrivateKey.(crypto.Signer).Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("pki: sign: %w", err)
	}
	return sig, nil
}

// Curves are the key exchanges every qledger port offers, hybrid
// post-quantum first.
var Curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519}

// ServerConfig is a TLS 1.3 server configuration. With require, a client
// certificate from the CA is mandatory; otherwise one is verified if
// given, and handlers decide what an anonymous caller may do. accept, if
// set, is called with every verified client identity and may refuse it.
func (c *Credentials) ServerConfig(require bool, accept func(Identity) error) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if require {
		auth = tls.RequireAndVerifyClientCert
	}
	base := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: Curves}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := &tls.Config{
			MinVersion:       tls.VersionTLS13,
			CurvePreferences: Curves,
			Certificates:     []tls.Certificate{*c.Certificate()},
			ClientAuth:       auth,
			ClientCAs:        c.Pool(),
		}
		if accept != nil {
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil
				}
				id, err := IdentityOf(cs.PeerCertificates[0])
				if err != nil {
					return err
				}
				return accept(id)
			}
		}
		return cfg, nil
	}
	return base
}

// ClientConfig is a TLS 1.3 client configuration presenting this
// certificate. The server must present a node certificate from the CA
// (host names are not checked: nodes are named by ID); if expect is set,
// it is called with the server's identity and may refuse it.
func (c *Credentials) ClientConfig(expect func(Identity) error) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: Curves,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.Certificate(), nil
		},
		// The chain is verified in VerifyConnection against the cluster
		// CA, by identity instead of host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := Verify(cs.PeerCertificates, c.Pool(), x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if id.Role != RoleNode {
				return fmt.Errorf("%w: the server presents a %s certificate, not a node's", ErrNotVerified, id.Role)
			}
			if expect != nil {
				return expect(id)
			}
			return nil
		},
	}
}

// PeerIdentity is the identity in a completed handshake's verified client
// certificate, if any.
func PeerIdentity(cs *tls.ConnectionState) (Identity, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return Identity{}, false
	}
	id, err := IdentityOf(cs.PeerCertificates[0])
	return id, err == nil
}

// VerifySignature checks that sig is the signature of SHA-256(msg) by the
// leaf of chainDER (DER, leaf first), that the chain verifies against
// roots, and that the leaf is a node certificate; it returns the signer.
func VerifySignature(chainDER [][]byte, roots *x509.CertPool, msg, sig []byte) (Identity, error) {
	var certs []*x509.Certificate
	for _, der := range chainDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrNotVerified, err)
		}
		certs = append(certs, c)
	}
	id, err := Verify(certs, roots, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return Identity{}, err
	}
	if id.Role != RoleNode {
		return Identity{}, fmt.Errorf("%w: signed by a %s certificate, not a node's", ErrBadSignature, id.Role)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return Identity{}, fmt.Errorf("%w: the signer's key is not ECDSA", ErrBadSignature)
	}
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return Identity{}, fmt.Errorf("%w: does not verify under node %.12s's key", ErrBadSignature, id.NodeID)
	}
	return id, nil
}
