package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// With TLS, a node's gossip metadata is signed with its node key, and a
// member is admitted only if the signature verifies under the node
// certificate that the member's own raft/RPC address presents in a
// mutual-TLS handshake (which checks the CA, the node role and the ID).
// The gossip key and label only keep strangers from reading or joining
// the gossip; the signature keeps a holder of the gossip key who has no
// node certificate from announcing a node.

// metaTag separates signed gossip metadata from anything else the node
// key signs.
const metaTag = "qledger gossip meta v1\x00"

// signedMeta is the metadata envelope: the metadata as JSON and the
// signature over metaTag || M.
type signedMeta struct {
	M json.RawMessage `json:"m"`
	S []byte          `json:"s"`
}

// metaCerts caches the node certificates that members' addresses
// presented, so verifying a metadata update does not dial, and the last
// envelope each member's certificate verified, so the same metadata
// arriving again (every probe, push-pull and rejoin carries it) costs a
// comparison instead of an ECDSA verification.
type metaCerts struct {
	mu       sync.Mutex
	certs    map[string]*x509.Certificate
	failed   map[string]time.Time
	verified map[string]string // member ID -> envelope its cached certificate verified
}

// seen reports whether raw is the envelope that name's cached certificate
// last verified.
func (c *metaCerts) seen(name string, raw []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.verified[name]
	return ok && v == string(raw)
}

// remember records that raw verified under name's certificate cert, if
// that is still the cached one.
func (c *metaCerts) remember(name string, raw []byte, cert *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.certs[name] != cert {
		return
	}
	if c.verified == nil {
		c.verified = map[string]string{}
	}
	c.verified[name] = string(raw)
}

// certFetchTimeout bounds the handshake that fetches a new member's
// certificate; memberlist waits for it, so it is short.
const certFetchTimeout = time.Second

// certRetry is how long a failed fetch is not retried, so a dead address
// does not hold gossip up again and again.
const certRetry = 2 * time.Second

// sealMeta signs encoded metadata, or returns it as is without TLS.
func (g *gossip) sealMeta(inner []byte) []byte {
	creds := g.n.cfg.TLS
	if creds == nil {
		return inner
	}
	sig, err := creds.Sign(append([]byte(metaTag), inner...))
	if err != nil {
		g.n.logger.Error("cannot sign gossip metadata", "error", err)
		return nil
	}
	b, _ := json.Marshal(signedMeta{M: inner, S: sig})
	return b
}

// openMeta returns the metadata JSON of member name (whose raft/RPC
// address the metadata names), verifying its signature with TLS.
func (g *gossip) openMeta(raw []byte, name string) ([]byte, error) {
	if g.n.cfg.TLS == nil {
		return raw, nil
	}
	var env signedMeta
	if err := json.Unmarshal(raw, &env); err != nil || len(env.M) == 0 || len(env.S) == 0 {
		return nil, fmt.Errorf("%w: metadata of %.12s is not signed", ErrWrongNode, name)
	}
	var m nodeMeta
	if err := json.Unmarshal(env.M, &m); err != nil {
		return nil, fmt.Errorf("unreadable metadata: %v", err)
	}
	if m.ID != name || m.Addr == "" {
		return nil, fmt.Errorf("metadata ID %q does not match member name %q", m.ID, name)
	}
	msg := sha256.Sum256(append([]byte(metaTag), env.M...))
	for _, refresh := range []bool{false, true} {
		cert, err := g.memberCert(m.ID, m.Addr, refresh)
		if err != nil {
			return nil, err
		}
		if !refresh && g.certs.seen(name, raw) {
			return env.M, nil
		}
		if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && ecdsa.VerifyASN1(pub, msg[:], env.S) {
			g.certs.remember(name, raw, cert)
			return env.M, nil
		}
	}
	return nil, fmt.Errorf("%w: the metadata signature of %.12s does not verify under the certificate at %s", ErrWrongNode, m.ID, m.Addr)
}

// memberCert is the node certificate that id's address presents; refresh
// fetches it again (a node that reloaded its certificate).
func (g *gossip) memberCert(id, addr string, refresh bool) (*x509.Certificate, error) {
	c := &g.certs
	c.mu.Lock()
	if c.certs == nil {
		c.certs, c.failed = map[string]*x509.Certificate{}, map[string]time.Time{}
	}
	if cert, ok := c.certs[id]; ok && !refresh {
		c.mu.Unlock()
		return cert, nil
	}
	if t, ok := c.failed[id]; ok && time.Since(t) < certRetry {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: no certificate from %.12s at %s yet", ErrWrongNode, id, addr)
	}
	c.mu.Unlock()
	conn, err := g.n.client.dialer.dial(context.Background(), addr, connRPC, certFetchTimeout, id)
	var cert *x509.Certificate
	if err == nil {
		if tc, ok := conn.(*tls.Conn); ok {
			if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
				cert = cs.PeerCertificates[0]
			}
		}
		conn.Close()
		if cert == nil {
			err = fmt.Errorf("%w: %s presented no certificate", ErrWrongNode, addr)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed[id] = time.Now()
		return nil, fmt.Errorf("cluster: certificate of gossip member %.12s: %w", id, err)
	}
	delete(c.failed, id)
	c.certs[id] = cert
	delete(c.verified, id) // verified under the certificate this replaces
	return cert, nil
}
