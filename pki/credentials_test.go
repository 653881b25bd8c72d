package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qledger/chain"
)

func credsOf(t *testing.T, ca *CA, l Leaf) *Credentials {
	t.Helper()
	c, err := NewCredentials(ca.PEM, mustIssue(t, ca, l).TLS)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signECDSA signs SHA-256(msg) the way Credentials.Sign does, for keys
// that Credentials would refuse to hold.
func signECDSA(t *testing.T, key *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestVerifySignature checks the signed-head rule: only a node certificate
// from the cluster CA can vouch for a head, whoever else holds a valid
// certificate and a valid signature.
func TestVerifySignature(t *testing.T) {
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	hd := chain.Header{Version: 1, Group: 1, Height: 7, TxCount: 3, LogSize: 21}
	msg := chain.HeadStatement(&hd, time.Now().UnixNano())

	node := credsOf(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	sig, err := node.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := VerifySignature(node.ChainDER(), ca.Pool(), msg, sig)
	if err != nil || id != (Identity{Name: "n1", Role: RoleNode, NodeID: testNodeID}) {
		t.Fatalf("a node's head: %+v, %v", id, err)
	}

	// Submitters, auditors and admins of the same CA sign validly with
	// their own keys; none of them may vouch for a head. A submitter
	// certificate with server usage gets past the chain check, so only the
	// role check stands between it and a forged head.
	for _, l := range []Leaf{
		{CommonName: "alice", Server: true, Client: true, Role: RoleSubmitter},
		{CommonName: "audrey", Server: true, Client: true, Role: RoleAuditor},
		{CommonName: "root", Server: true, Client: true, Role: RoleAdmin},
	} {
		c := credsOf(t, ca, l)
		s, err := c.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if pub := c.Certificate().Leaf.PublicKey.(*ecdsa.PublicKey); !ecdsa.VerifyASN1(pub, sha256sum(msg), s) {
			t.Fatalf("%s: the signature itself must be valid for this case to mean anything", l.Role)
		}
		if id, err := VerifySignature(c.ChainDER(), ca.Pool(), msg, s); !errors.Is(err, ErrBadSignature) {
			t.Errorf("head signed by a %s with server usage: %+v, %v; want ErrBadSignature", l.Role, id, err)
		}
	}
	sub := credsOf(t, ca, Leaf{CommonName: "alice", Client: true, Role: RoleSubmitter})
	subSig, _ := sub.Sign(msg)
	if id, err := VerifySignature(sub.ChainDER(), ca.Pool(), msg, subSig); err == nil {
		t.Errorf("head signed by a client-only submitter accepted as %+v", id)
	}

	// A node certificate with a non-node identity crafted in: same CA,
	// valid signature, still refused.
	crafted, key := craft(t, ca, func(c *x509.Certificate) {
		c.URIs = uris(t, "qledger:role:submitter", "qledger:node:"+testNodeID)
	})
	if id, err := VerifySignature([][]byte{crafted.Raw}, ca.Pool(), msg, signECDSA(t, key, msg)); err == nil {
		t.Errorf("head signed by a submitter carrying a node ID accepted as %+v", id)
	}

	expired := mustIssue(t, ca, Leaf{CommonName: "old", Role: RoleNode, NodeID: testNodeID, Expires: time.Now().Add(-time.Minute)})
	notYet, notYetKey := craft(t, ca, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
		c.URIs = uris(t, "qledger:role:node", "qledger:node:"+testNodeID)
	})
	foreign := credsOf(t, other, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	foreignSig, _ := foreign.Sign(msg)
	tampered := append([]byte(nil), msg...)
	tampered[len(tampered)-9] ^= 1 // a bit of the header, not the time

	for _, tc := range []struct {
		name  string
		chain [][]byte
		msg   []byte
		sig   []byte
		err   error
	}{
		{"another CA's node", foreign.ChainDER(), msg, foreignSig, ErrNotVerified},
		{"expired node", expired.TLS.Certificate, msg, signECDSA(t, expired.TLS.PrivateKey.(*ecdsa.PrivateKey), msg), ErrNotVerified},
		{"not-yet-valid node", [][]byte{notYet.Raw}, msg, signECDSA(t, notYetKey, msg), ErrNotVerified},
		{"no chain", nil, msg, sig, ErrNotVerified},
		{"garbage DER", [][]byte{[]byte("not a certificate")}, msg, sig, ErrNotVerified},
		{"other message", node.ChainDER(), tampered, sig, ErrBadSignature},
		{"empty signature", node.ChainDER(), msg, nil, ErrBadSignature},
		{"truncated signature", node.ChainDER(), msg, sig[:len(sig)-1], ErrBadSignature},
		{"another node's signature", node.ChainDER(), msg, foreignSig, ErrBadSignature},
	} {
		if id, err := VerifySignature(tc.chain, ca.Pool(), tc.msg, tc.sig); !errors.Is(err, tc.err) {
			t.Errorf("%s: VerifySignature = %+v, %v; want %v", tc.name, id, err, tc.err)
		}
	}
}

func sha256sum(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

type credFiles struct{ dir, ca, cert, key string }

func writeCreds(t *testing.T, f credFiles, ca *CA, is Issued) {
	t.Helper()
	for path, b := range map[string][]byte{f.ca: ca.PEM, f.cert: is.CertPEM, f.key: is.KeyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCredentialsReload: a reload that fails for any reason leaves the
// credentials exactly as they were; a good one swaps all of them at once.
func TestCredentialsReload(t *testing.T) {
	dir := t.TempDir()
	f := credFiles{dir, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "me.pem"), filepath.Join(dir, "me-key.pem")}
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	first := mustIssue(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	writeCreds(t, f, ca, first)
	c, err := LoadCredentials(f.ca, f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Name: "n1", Role: RoleNode, NodeID: testNodeID}
	if got := c.Identity(); got != want {
		t.Fatalf("loaded identity %+v, want %+v", got, want)
	}
	cert0, pool0 := c.Certificate(), c.Pool()

	good := mustIssue(t, ca, Leaf{CommonName: "alice", Client: true, Role: RoleSubmitter})
	expired := mustIssue(t, ca, Leaf{CommonName: "old", Client: true, Role: RoleSubmitter, Expires: time.Now().Add(-time.Minute)})
	foreign := mustIssue(t, other, Leaf{CommonName: "mallory", Client: true, Role: RoleAdmin})
	noRole := mustIssue(t, ca, Leaf{CommonName: "plain", Client: true})
	for _, tc := range []struct {
		name  string
		write map[string][]byte
	}{
		{"cert file garbage", map[string][]byte{f.cert: []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")}},
		{"cert file empty", map[string][]byte{f.cert: nil}},
		{"cert file half written", map[string][]byte{f.cert: good.CertPEM[:len(good.CertPEM)/2], f.key: good.KeyPEM}},
		{"key does not match", map[string][]byte{f.cert: good.CertPEM, f.key: first.KeyPEM}},
		{"key file garbage", map[string][]byte{f.cert: good.CertPEM, f.key: []byte("junk")}},
		{"CA file garbage", map[string][]byte{f.ca: []byte("junk"), f.cert: good.CertPEM, f.key: good.KeyPEM}},
		{"certificate from another CA", map[string][]byte{f.cert: foreign.CertPEM, f.key: foreign.KeyPEM}},
		{"CA swapped under our certificate", map[string][]byte{f.ca: other.PEM}},
		{"expired certificate", map[string][]byte{f.cert: expired.CertPEM, f.key: expired.KeyPEM}},
		{"certificate without a role", map[string][]byte{f.cert: noRole.CertPEM, f.key: noRole.KeyPEM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeCreds(t, f, ca, first)
			for path, b := range tc.write {
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Reload(); err == nil {
				t.Fatal("Reload accepted it")
			}
			if got := c.Identity(); got != want {
				t.Fatalf("identity after a failed reload: %+v", got)
			}
			if c.Certificate() != cert0 || c.Pool() != pool0 {
				t.Fatal("certificate or pool replaced by a failed reload")
			}
		})
	}
	if err := os.Remove(f.key); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err == nil || c.Certificate() != cert0 {
		t.Fatalf("reload with the key file gone: %v", err)
	}

	writeCreds(t, f, ca, good)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := c.Identity(); got != (Identity{Name: "alice", Role: RoleSubmitter}) {
		t.Fatalf("identity after a good reload: %+v", got)
	}
	if leaf := c.Certificate().Leaf; leaf == nil || leaf.Subject.CommonName != "alice" {
		t.Fatal("the certificate did not change with the identity")
	}

	mem := credsOf(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	if err := mem.Reload(); err == nil {
		t.Fatal("in-memory credentials reloaded from no files")
	}
	if _, err := LoadCredentials(f.ca, f.cert, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("LoadCredentials without a key file")
	}
}

func TestNewCredentialsRefuses(t *testing.T) {
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	ok := mustIssue(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	if _, err := NewCredentials(ca.PEM, ok.TLS); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCredentials(other.PEM, ok.TLS); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("another CA: %v", err)
	}
	if _, err := NewCredentials([]byte("junk"), ok.TLS); err == nil {
		t.Fatal("a CA bundle with no certificate")
	}
	if _, err := NewCredentials(ca.PEM, tls.Certificate{}); err == nil {
		t.Fatal("no certificate")
	}
	exp := mustIssue(t, ca, Leaf{CommonName: "old", Role: RoleNode, NodeID: testNodeID, Expires: time.Now().Add(-time.Second)})
	if _, err := NewCredentials(ca.PEM, exp.TLS); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("expired: %v", err)
	}
}

// handshake runs a TLS handshake over an in-memory pipe and returns the
// client's and the server's errors. In TLS 1.3 the client finishes before
// the server has checked its certificate, so the client keeps reading
// (and so takes the server's alert) until the server side closes.
func handshake(t *testing.T, client, server *tls.Config) (cerr, serr error) {
	t.Helper()
	a, b := net.Pipe()
	deadline := time.Now().Add(30 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	t.Cleanup(func() { a.Close(); b.Close() })
	done := make(chan error, 1)
	go func() {
		err := tls.Server(b, server).Handshake()
		b.Close()
		done <- err
	}()
	c := tls.Client(a, client)
	if cerr = c.Handshake(); cerr == nil {
		go io.Copy(io.Discard, c)
	} else {
		a.Close()
	}
	return cerr, <-done
}

// TestClientConfigWantsANode: a client only talks to a server presenting
// a node certificate from its own CA.
func TestClientConfigWantsANode(t *testing.T) {
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	client := credsOf(t, ca, Leaf{CommonName: "alice", Client: true, Role: RoleSubmitter})
	for _, tc := range []struct {
		name   string
		server *Credentials
		ok     bool
	}{
		{"node", credsOf(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID}), true},
		{"submitter with server usage", credsOf(t, ca, Leaf{CommonName: "eve", Server: true, Client: true, Role: RoleSubmitter}), false},
		{"node of another CA", credsOf(t, other, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen Identity
			cerr, serr := handshake(t, client.ClientConfig(func(id Identity) error { seen = id; return nil }), tc.server.ServerConfig(false, nil))
			if tc.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("handshake: client %v, server %v", cerr, serr)
				}
				if seen.NodeID != testNodeID {
					t.Fatalf("expect saw %+v", seen)
				}
				return
			}
			if cerr == nil || !strings.Contains(cerr.Error(), ErrNotVerified.Error()) {
				t.Fatalf("client accepted the server: %v", cerr)
			}
		})
	}
}

// TestServerConfigAccept: with require, a client without a certificate or
// from another CA fails the handshake; accept sees every verified identity
// and can refuse it.
func TestServerConfigAccept(t *testing.T) {
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	server := credsOf(t, ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	refuse := errors.New("not an admin")
	accept := func(id Identity) error {
		if id.Role != RoleAdmin {
			return refuse
		}
		return nil
	}
	anon := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	for _, tc := range []struct {
		name    string
		client  *tls.Config
		require bool
		ok      bool
	}{
		{"admin", credsOf(t, ca, Leaf{CommonName: "root", Client: true, Role: RoleAdmin}).ClientConfig(nil), true, true},
		{"auditor refused by accept", credsOf(t, ca, Leaf{CommonName: "a", Client: true, Role: RoleAuditor}).ClientConfig(nil), true, false},
		{"admin of another CA", credsOf(t, other, Leaf{CommonName: "root", Client: true, Role: RoleAdmin}).ClientConfig(nil), false, false},
		{"anonymous when required", anon, true, false},
		{"anonymous when optional", anon, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, serr := handshake(t, tc.client, server.ServerConfig(tc.require, accept))
			if tc.ok != (serr == nil) {
				t.Fatalf("server handshake error %v, want ok=%v", serr, tc.ok)
			}
		})
	}
}

func TestLoadPoolAndCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "root")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPool(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPool(filepath.Join(dir, "ca-key.pem")); err == nil {
		t.Fatal("a key file taken as a CA bundle")
	}
	if _, err := LoadPool(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("a missing file taken as a CA bundle")
	}
	// A leaf certificate saved as ca.pem is not a CA.
	leafDir := t.TempDir()
	leaf := mustIssue(t, ca, Leaf{CommonName: "n", Role: RoleNode, NodeID: testNodeID})
	if err := leaf.Save(leafDir, "ca"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(leafDir); !errors.Is(err, ErrNoCA) {
		t.Fatalf("a leaf as the CA: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestNotAfterIsTheEarliestInTheChain checks that a CA root ending before
// the leaf sets the expiry.
func TestNotAfterIsTheEarliestInTheChain(t *testing.T) {
	ca, err := NewCA("short CA", 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Leaf{CommonName: "s", Role: RoleSubmitter, Client: true, Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := NewCredentials(ca.PEM, leaf.TLS)
	if err != nil {
		t.Fatal(err)
	}
	if got := creds.NotAfter(); !got.Equal(ca.Cert.NotAfter) {
		t.Fatalf("NotAfter %v, want the CA's %v", got, ca.Cert.NotAfter)
	}
}
