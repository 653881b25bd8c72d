package cluster

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"qledger/pki"
)

// TestOpenMetaVerifiesOnceAndStillRefusesForgeries: metadata that
// verified is accepted again from the cache, while an envelope that
// differs in any byte, or one whose member's certificate changed, is
// checked again and refused when its signature does not verify.
func TestOpenMetaVerifiesOnceAndStillRefusesForgeries(t *testing.T) {
	ca, err := pki.NewCA("test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id := NewNodeID().String()
	creds := nodeCreds(t, ca, id)
	leaf := func(c *pki.Credentials) *x509.Certificate {
		x, err := x509.ParseCertificate(c.ChainDER()[0])
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	g := &gossip{n: &Node{cfg: Config{TLS: creds}}}
	// The member's certificate is cached and a refresh is not due, so
	// openMeta never dials here.
	g.certs = metaCerts{
		certs:  map[string]*x509.Certificate{id: leaf(creds)},
		failed: map[string]time.Time{id: time.Now().Add(time.Hour)},
	}
	inner, _ := json.Marshal(nodeMeta{ID: id, Addr: "127.0.0.1:1", Role: RoleVoter})
	signed := (&gossip{n: &Node{cfg: Config{TLS: creds}}}).sealMeta(inner)

	for i := range 2 {
		got, err := g.openMeta(signed, id)
		if err != nil || string(got) != string(inner) {
			t.Fatalf("open %d: got %q, %v", i, got, err)
		}
	}
	if !g.certs.seen(id, signed) {
		t.Fatal("a verified envelope is not remembered")
	}

	var env signedMeta
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	env.S[len(env.S)/2] ^= 1
	forged, _ := json.Marshal(env)
	if _, err := g.openMeta(forged, id); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("forged signature: got %v, want ErrWrongNode", err)
	}

	// Another key now stands behind the member's address: the envelope
	// the old key signed must be verified again, and fail.
	other := nodeCreds(t, ca, id)
	g.certs.mu.Lock()
	g.certs.certs[id] = leaf(other)
	delete(g.certs.verified, id)
	g.certs.mu.Unlock()
	if _, err := g.openMeta(signed, id); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("envelope under a replaced certificate: got %v, want ErrWrongNode", err)
	}
	// remember refuses a certificate that is no longer the cached one.
	g.certs.remember(id, signed, leaf(creds))
	if g.certs.seen(id, signed) {
		t.Fatal("remembered an envelope under a certificate that is no longer cached")
	}
}
