package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testNodeID is a valid node ID: 64 lower-case hex digits.
var testNodeID = strings.Repeat("0123456789abcdef", 4)

func newTestCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// craft signs a certificate that Issue would refuse to make, so the
// readers can be tested on what an attacker or a buggy CA could present.
// edit adjusts a template that starts as a valid client certificate.
func craft(t *testing.T, ca *CA, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "crafted"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func uris(t *testing.T, raw ...string) []*url.URL {
	t.Helper()
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Role
	}{
		{"node", RoleNode},
		{"submitter", RoleSubmitter},
		{"auditor", RoleAuditor},
		{"admin", RoleAdmin},
	} {
		got, err := ParseRole(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Node", "ADMIN", " node", "node ", "root", "submitters", "role:node"} {
		if got, err := ParseRole(bad); !errors.Is(err, ErrBadRole) || got != "" {
			t.Errorf("ParseRole(%q) = %q, %v; want ErrBadRole", bad, got, err)
		}
	}
	if len(Roles) != 4 {
		t.Fatalf("Roles = %v; every role needs a ParseRole case above", Roles)
	}
}

// TestIdentityOf reads the URI SANs of certificates as they appear on the
// wire ("qledger:role:<role>", "qledger:node:<id>"), written out here by
// hand rather than through roleURI/nodeURI.
func TestIdentityOf(t *testing.T) {
	ca := newTestCA(t, "root")
	upper := strings.ToUpper(testNodeID)
	for _, tc := range []struct {
		name string
		uris []string
		want Identity
		err  error
	}{
		{"submitter", []string{"qledger:role:submitter"}, Identity{Name: "crafted", Role: RoleSubmitter}, nil},
		{"auditor", []string{"qledger:role:auditor"}, Identity{Name: "crafted", Role: RoleAuditor}, nil},
		{"admin", []string{"qledger:role:admin"}, Identity{Name: "crafted", Role: RoleAdmin}, nil},
		{"node", []string{"qledger:role:node", "qledger:node:" + testNodeID}, Identity{Name: "crafted", Role: RoleNode, NodeID: testNodeID}, nil},
		{"node ID first", []string{"qledger:node:" + testNodeID, "qledger:role:node"}, Identity{Name: "crafted", Role: RoleNode, NodeID: testNodeID}, nil},
		{"foreign URIs ignored", []string{"https://example.com/role:admin", "spiffe://x/role:node", "qledger:role:auditor"}, Identity{Name: "crafted", Role: RoleAuditor}, nil},
		{"same role twice", []string{"qledger:role:auditor", "qledger:role:auditor"}, Identity{Name: "crafted", Role: RoleAuditor}, nil},

		{"no URI", nil, Identity{}, ErrNoIdentity},
		{"only foreign URIs", []string{"https://example.com/qledger:role:admin"}, Identity{}, ErrNoIdentity},
		{"two roles", []string{"qledger:role:submitter", "qledger:role:admin"}, Identity{}, ErrNoIdentity},
		{"two roles, node first", []string{"qledger:role:node", "qledger:node:" + testNodeID, "qledger:role:admin"}, Identity{}, ErrNoIdentity},
		{"unknown role", []string{"qledger:role:root"}, Identity{}, ErrBadRole},
		{"role in wrong case", []string{"qledger:role:Admin"}, Identity{}, ErrBadRole},
		{"node ID on a submitter", []string{"qledger:role:submitter", "qledger:node:" + testNodeID}, Identity{}, ErrNoIdentity},
		{"node ID on an admin", []string{"qledger:node:" + testNodeID, "qledger:role:admin"}, Identity{}, ErrNoIdentity},
		{"node ID without a role", []string{"qledger:node:" + testNodeID}, Identity{}, ErrNoIdentity},
		{"node without ID", []string{"qledger:role:node"}, Identity{}, ErrNoIdentity},
		{"node ID too short", []string{"qledger:role:node", "qledger:node:" + testNodeID[1:]}, Identity{}, ErrNoIdentity},
		{"node ID not hex", []string{"qledger:role:node", "qledger:node:" + testNodeID[1:] + "g"}, Identity{}, ErrNoIdentity},
		{"node ID upper case", []string{"qledger:role:node", "qledger:node:" + upper}, Identity{}, ErrNoIdentity},
		{"two node IDs", []string{"qledger:role:node", "qledger:node:" + testNodeID, "qledger:node:" + strings.Repeat("f", 64)}, Identity{}, ErrNoIdentity},
		{"bad then good node ID", []string{"qledger:role:node", "qledger:node:xyz", "qledger:node:" + testNodeID}, Identity{}, ErrNoIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, _ := craft(t, ca, func(c *x509.Certificate) { c.URIs = uris(t, tc.uris...) })
			got, err := IdentityOf(cert)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("IdentityOf = %+v, %v; want %v", got, err, tc.err)
				}
				if got != (Identity{}) {
					t.Fatalf("IdentityOf returned %+v with its error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("IdentityOf = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestIssueIdentity checks what Issue writes, read back by IdentityOf,
// and what it refuses to write.
func TestIssueIdentity(t *testing.T) {
	ca := newTestCA(t, "root")
	node, err := ca.Issue(Leaf{CommonName: "n1", Role: RoleNode, NodeID: strings.ToUpper(testNodeID)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := node.TLS.Leaf
	if got, err := IdentityOf(leaf); err != nil || got != (Identity{Name: "n1", Role: RoleNode, NodeID: testNodeID}) {
		t.Fatalf("node certificate reads as %+v, %v", got, err)
	}
	if got := leaf.ExtKeyUsage; len(got) != 2 {
		t.Fatalf("a node certificate needs server and client usage, has %v", got)
	}
	var raw []string
	for _, u := range leaf.URIs {
		raw = append(raw, u.String())
	}
	if want := []string{"qledger:role:node", "qledger:node:" + testNodeID}; strings.Join(raw, " ") != strings.Join(want, " ") {
		t.Fatalf("URI SANs = %v, want %v", raw, want)
	}

	for _, tc := range []struct {
		name string
		leaf Leaf
		err  error
	}{
		{"node ID on a submitter", Leaf{CommonName: "s", Client: true, Role: RoleSubmitter, NodeID: testNodeID}, ErrBadRole},
		{"node ID without a role", Leaf{CommonName: "s", Client: true, NodeID: testNodeID}, ErrBadRole},
		{"node without ID", Leaf{CommonName: "n", Role: RoleNode}, ErrBadNodeID},
		{"node ID too long", Leaf{CommonName: "n", Role: RoleNode, NodeID: testNodeID + "0"}, ErrBadNodeID},
		{"node ID not hex", Leaf{CommonName: "n", Role: RoleNode, NodeID: "z" + testNodeID[1:]}, ErrBadNodeID},
		{"unknown role", Leaf{CommonName: "r", Client: true, Role: "root"}, ErrBadRole},
		{"no name", Leaf{Client: true, Role: RoleAuditor}, ErrBadName},
	} {
		if _, err := ca.Issue(tc.leaf); !errors.Is(err, tc.err) {
			t.Errorf("%s: Issue err = %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestVerify(t *testing.T) {
	ca, other := newTestCA(t, "root"), newTestCA(t, "other root")
	issue := func(ca *CA, l Leaf) []*x509.Certificate {
		t.Helper()
		is, err := ca.Issue(l)
		if err != nil {
			t.Fatal(err)
		}
		var chain []*x509.Certificate
		for _, der := range is.TLS.Certificate {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, c)
		}
		return chain
	}
	node := issue(ca, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	sub := issue(ca, Leaf{CommonName: "alice", Client: true, Role: RoleSubmitter})
	expired := issue(ca, Leaf{CommonName: "old", Role: RoleNode, NodeID: testNodeID, Expires: time.Now().Add(-time.Minute)})
	foreign := issue(other, Leaf{CommonName: "n1", Role: RoleNode, NodeID: testNodeID})
	notYet, _ := craft(t, ca, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
		c.URIs = uris(t, "qledger:role:node", "qledger:node:"+testNodeID)
	})
	noIdentity := issue(ca, Leaf{CommonName: "kme", Server: true, Client: true})
	// A node certificate's key signing a "certificate" of its own: not a
	// CA, so nothing it signs is trusted.
	nodeKey := mustIssue(t, ca, Leaf{CommonName: "n2", Role: RoleNode, NodeID: testNodeID})
	subCA := &CA{Cert: nodeKey.TLS.Leaf, key: nodeKey.TLS.PrivateKey.(*ecdsa.PrivateKey)}
	underNode, _ := craft(t, subCA, func(c *x509.Certificate) {
		c.URIs = uris(t, "qledger:role:admin")
	})

	if id, err := Verify(node, ca.Pool(), x509.ExtKeyUsageServerAuth); err != nil || id.NodeID != testNodeID {
		t.Fatalf("node as server: %+v, %v", id, err)
	}
	if id, err := Verify(node[:1], ca.Pool(), x509.ExtKeyUsageClientAuth); err != nil || id.Role != RoleNode {
		t.Fatalf("node leaf alone as client: %+v, %v", id, err)
	}
	if id, err := Verify(sub, ca.Pool(), x509.ExtKeyUsageClientAuth); err != nil || id != (Identity{Name: "alice", Role: RoleSubmitter}) {
		t.Fatalf("submitter as client: %+v, %v", id, err)
	}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		usage x509.ExtKeyUsage
		err   error
	}{
		{"no certificate", nil, x509.ExtKeyUsageClientAuth, ErrNotVerified},
		{"client certificate as server", sub, x509.ExtKeyUsageServerAuth, ErrNotVerified},
		{"expired", expired, x509.ExtKeyUsageServerAuth, ErrNotVerified},
		{"not yet valid", []*x509.Certificate{notYet, ca.Cert}, x509.ExtKeyUsageServerAuth, ErrNotVerified},
		{"another CA", foreign, x509.ExtKeyUsageServerAuth, ErrNotVerified},
		{"another CA's leaf with our root appended", []*x509.Certificate{foreign[0], ca.Cert}, x509.ExtKeyUsageServerAuth, ErrNotVerified},
		{"signed by a node key", []*x509.Certificate{underNode, nodeKey.TLS.Leaf, ca.Cert}, x509.ExtKeyUsageClientAuth, ErrNotVerified},
		{"verified but no identity", noIdentity, x509.ExtKeyUsageServerAuth, ErrNoIdentity},
	} {
		if id, err := Verify(tc.chain, ca.Pool(), tc.usage); !errors.Is(err, tc.err) {
			t.Errorf("%s: Verify = %+v, %v; want %v", tc.name, id, err, tc.err)
		}
	}
	if _, err := Verify(foreign, other.Pool(), x509.ExtKeyUsageServerAuth); err != nil {
		t.Fatalf("the other CA's node under its own root: %v", err)
	}
}

func mustIssue(t *testing.T, ca *CA, l Leaf) Issued {
	t.Helper()
	is, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return is
}
