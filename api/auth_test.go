package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/pki"
)

// tlsAPI starts a one-node cluster with a CA and its API over HTTPS.
func tlsAPI(t *testing.T) (*cluster.Local, *pki.CA, string) {
	return tlsAPIWith(t, nil)
}

func tlsAPIWith(t *testing.T, tune func(*Config)) (*cluster.Local, *pki.CA, string) {
	t.Helper()
	ca, err := pki.NewCA("test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: 1, Replicas: 1, DataDir: t.TempDir(), CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := DefaultConfig()
	cfg.TLS = l.Nodes[0].Credentials()
	if tune != nil {
		tune(&cfg)
	}
	srv, err := New(cfg, l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return l, ca, "https://" + ln.Addr().String()
}

// callers are the parties of the authorization matrix, each an
// http.Client with its TLS configuration.
func callers(t *testing.T, ca *pki.CA, nodeID string) map[string]*http.Client {
	t.Helper()
	hc := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	issue := func(ca *pki.CA, l pki.Leaf) *tls.Config {
		cert, err := ca.Issue(l)
		if err != nil {
			t.Fatal(err)
		}
		// Present the certificate even where the server's list of
		// acceptable CAs does not name its issuer (as an attacker would).
		return &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert.TLS, nil
		}}
	}
	other, err := pki.NewCA("another cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*http.Client{
		"none":     hc(&tls.Config{InsecureSkipVerify: true}),
		"other-ca": hc(issue(other, pki.Leaf{CommonName: "mallory", Role: pki.RoleAdmin, Client: true})),
		"expired":  hc(issue(ca, pki.Leaf{CommonName: "old", Role: pki.RoleAdmin, Client: true, Expires: time.Now().Add(-time.Hour)})),
	}
	for _, r := range []pki.Role{pki.RoleSubmitter, pki.RoleAuditor, pki.RoleAdmin} {
		cert, err := ca.Issue(pki.Leaf{CommonName: "the-" + string(r), Role: r, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
		if err != nil {
			t.Fatal(err)
		}
		out[string(r)] = hc(creds.ClientConfig(nil))
	}
	cert, err := ca.Issue(pki.Leaf{CommonName: "peer", Role: pki.RoleNode, NodeID: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	out["node"] = hc(creds.ClientConfig(nil))
	return out
}

func do(hc *http.Client, method, url, body string) (int, string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error() // the TLS handshake refused the caller
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthorizationMatrix calls every endpoint as every kind of caller and
// checks the exact status. 0 means the TLS handshake refused the caller.
func TestAuthorizationMatrix(t *testing.T) {
	l, ca, base := tlsAPI(t)
	cs := callers(t, ca, cluster.NewNodeID().String())

	// A transaction of the submitter's and one of the node's, so that "a
	// submitter reads only its own" has both cases.
	submit := func(who string) string {
		st, body := do(cs[who], "POST", base+"/v1/tx", `{"payload":"aGVsbG8="}`)
		if st != 200 {
			t.Fatalf("%s submit: %d %s", who, st, body)
		}
		var r client.Receipt
		_ = json.Unmarshal([]byte(body), &r)
		return r.ID
	}
	own, others := submit("submitter"), submit("node")
	unknownNode := l.Nodes[0].ID().String()[:63] + "0"
	if unknownNode == l.Nodes[0].ID().String() {
		unknownNode = l.Nodes[0].ID().String()[:63] + "1"
	}

	const denied = 403
	type row struct {
		method, path, body string
		// status per caller; "none" is 401 unless the endpoint is open,
		// "other-ca" and "expired" are always refused by TLS (0).
		submitter, auditor, admin, node int
		open                            bool
	}
	rows := []row{
		{"POST", "/v1/tx", `{"payload":"aGk="}`, 200, denied, denied, 200, false},
		{"GET", "/v1/tx/" + own, "", 200, 200, 200, 200, false},
		{"GET", "/v1/tx/" + others, "", denied, 200, 200, 200, false},
		{"GET", "/v1/groups/0/head", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/blocks/1", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/blocks?from=1&limit=2", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/proof/consistency?from=1&to=2", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/checkpoint", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/checkpoint/key", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/tile/0/000.p/2", "", 200, 200, 200, 200, false},
		{"GET", "/v1/groups/0/tile/entries/000.p/2", "", 200, 200, 200, 200, false},
		{"GET", "/v1/keymanager", "", 200, 200, 200, 200, false},
		{"GET", "/v1/cluster", "", 200, 200, 200, 200, false},
		{"POST", "/v1/cluster/join", `{}`, denied, denied, 400, 400, false},
		{"DELETE", "/v1/cluster/nodes/" + unknownNode, "", denied, denied, 404, 404, false},
		{"POST", "/v1/cluster/scale", `{"executors":1}`, denied, denied, 404, 404, false},
		{"POST", "/v1/cluster/scrub", `{"group":9}`, denied, denied, 400, 400, false}, // no group 9
		{"POST", "/v1/cluster/repair", `{"group":9}`, denied, denied, 400, 400, false},
		{"POST", "/v1/groups/9/leader/transfer", `{}`, denied, denied, 503, 503, false}, // not this node's group
		{"POST", "/v1/node/leave", `{}`, denied, denied, 404, 404, false},               // an embedded node cannot leave on request
		{"GET", "/v1/groups/9/snapshot", "", denied, denied, 503, 503, false},           // not this node's group
		{"GET", "/v1/functions", "", 200, 200, 200, 200, false},
		{"POST", "/v1/functions", `{}`, denied, denied, 400, 400, false},
		{"POST", "/v1/functions/nothing/invoke", `{"input":""}`, 404, denied, denied, 404, false},
		{"POST", "/v1/functions/nothing/invoke?async=1", `{"input":""}`, 404, denied, denied, 404, false},
		{"GET", "/v1/functions/nothing", "", 404, 404, 404, 404, false},
		{"GET", "/v1/invocations/" + strings.Repeat("0", 64), "", 404, 404, 404, 404, false},
		{"GET", "/v1/data", "", 200, 200, 200, 200, false},
		{"POST", "/v1/data/item-1/shares/0", `{}`, 400, denied, denied, 400, false},
		{"GET", "/v1/data/item-1/shares/0", "", 404, 404, 404, 404, false},
		{"POST", "/v1/session", `{}`, 404, denied, denied, 404, false},
		{"GET", "/metrics", "", 200, 200, 200, 200, false},
		{"GET", "/debug/pprof/", "", denied, denied, 200, 200, false},
		{"GET", "/debug/pprof/heap?debug=1", "", denied, denied, 200, 200, false},
		{"GET", "/debug/pprof/profile?seconds=1", "", denied, denied, 200, 200, false},
		{"GET", "/debug/pprof/cmdline", "", denied, denied, 200, 200, false},
		{"GET", "/healthz", "", 200, 200, 200, 200, true},
		{"GET", "/readyz", "", 200, 200, 200, 200, true},
		{"GET", "/v1/openapi.json", "", 200, 200, 200, 200, true},
	}
	for _, r := range rows {
		want := map[string]int{"submitter": r.submitter, "auditor": r.auditor, "admin": r.admin, "node": r.node, "none": 401, "other-ca": 0, "expired": 0}
		if r.open {
			want["none"] = 200
		}
		for who, w := range want {
			got, body := do(cs[who], r.method, base+r.path, r.body)
			if got != w {
				t.Errorf("%s %s as %s: status %d, want %d (%.200s)", r.method, r.path, who, got, w, body)
			}
			if (got == 401 || got == 403) && !strings.Contains(body, `"code"`) {
				t.Errorf("%s %s as %s: %d without the JSON error body: %s", r.method, r.path, who, got, body)
			}
		}
	}
}

// TestCallerRecorded: the submitter's identity is in the committed
// transaction, and idempotency keys are bound to the caller: another
// caller's same key is a different request.
func TestCallerRecorded(t *testing.T) {
	l, ca, base := tlsAPI(t)
	cs := callers(t, ca, cluster.NewNodeID().String())
	_ = l
	post := func(who, key, body string) (int, client.Receipt) {
		req, _ := http.NewRequest("POST", base+"/v1/tx", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		resp, err := cs[who].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r client.Receipt
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	st, a := post("submitter", "k1", `{"payload":"YQ=="}`)
	if st != 200 {
		t.Fatalf("submit: %d", st)
	}
	st, b := post("node", "k1", `{"payload":"YQ=="}`)
	if st != 200 || b.ID == a.ID {
		t.Fatalf("another caller's key k1 replayed the first caller's receipt: %d %+v %+v", st, a, b)
	}
	if st, _ := post("submitter", "k1", `{"payload":"Yg=="}`); st != 422 {
		t.Fatalf("same caller, same key, other body: %d, want 422", st)
	}
	st, body := do(cs["auditor"], "GET", base+"/v1/tx/"+a.ID, "")
	if st != 200 {
		t.Fatal(st, body)
	}
	var tx client.TxResponse
	if err := json.Unmarshal([]byte(body), &tx); err != nil {
		t.Fatal(err)
	}
	if want := "submitter:the-submitter"; tx.Tx.Submitter != want {
		t.Fatalf("recorded submitter %q, want %q", tx.Tx.Submitter, want)
	}
}

// TestTLSCurve: the API negotiates X25519MLKEM768.
func TestTLSCurve(t *testing.T) {
	_, ca, base := tlsAPI(t)
	cert, err := ca.Issue(pki.Leaf{CommonName: "a", Role: pki.RoleAuditor, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := pki.NewCredentials(ca.PEM, cert.TLS)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), creds.ClientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("negotiated version %x curve %v, want TLS 1.3 with X25519MLKEM768", cs.Version, cs.CurveID)
	}
	// TLS 1.2 is refused.
	if c, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.2 handshake succeeded")
	}
}

// TestSignedHead: the head carries the leader's signature, which verifies
// against the cluster CA and fails when anything in it changes.
func TestSignedHead(t *testing.T) {
	l, ca, base := tlsAPI(t)
	cs := callers(t, ca, cluster.NewNodeID().String())
	if st, body := do(cs["submitter"], "POST", base+"/v1/tx", `{"payload":"aGk="}`); st != 200 {
		t.Fatal(st, body)
	}
	st, body := do(cs["auditor"], "GET", base+"/v1/groups/0/head", "")
	if st != 200 {
		t.Fatal(st, body)
	}
	var h client.Head
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	id, err := client.VerifyHeadSignature(h, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != l.Nodes[0].ID().String() || id.Role != pki.RoleNode {
		t.Fatalf("signed by %+v, want the leader %s", id, l.Nodes[0].ID())
	}
	other, _ := pki.NewCA("another", time.Hour)
	tampered := map[string]func(*client.Head){
		"signature byte": func(h *client.Head) {
			h.Signature = append([]byte(nil), h.Signature...)
			h.Signature[len(h.Signature)/2] ^= 1
		},
		"height":       func(h *client.Head) { h.Height++ },
		"log root":     func(h *client.Head) { h.LogRoot = strings.Repeat("0", 64) },
		"signer":       func(h *client.Head) { h.Signer = strings.Repeat("a", 64) },
		"no signature": func(h *client.Head) { h.Signature = nil },
	}
	for name, f := range tampered {
		bad := h
		f(&bad)
		if _, err := client.VerifyHeadSignature(bad, ca.Pool()); err == nil {
			t.Errorf("%s changed: the head still verifies", name)
		}
	}
	if _, err := client.VerifyHeadSignature(h, other.Pool()); err == nil {
		t.Error("the head verifies against another CA")
	}
}

// roleClient is a Go API client presenting a certificate for role.
func roleClient(t *testing.T, ca *pki.CA, base string, role pki.Role, name, nodeID string) *client.Client {
	t.Helper()
	cert, err := ca.Issue(pki.Leaf{CommonName: name, Role: role, Client: true, NodeID: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewTLS(base, creds.ClientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSharesWithheldFromNonReaders: an access-controlled item's share
// segments are withheld from callers not on its reader list, in blocks and
// in transaction reads, and the chain still verifies for them; readers
// and nodes get the bytes, and only readers get the shares.
func TestSharesWithheldFromNonReaders(t *testing.T) {
	_, ca, base := tlsAPI(t)
	ctx := context.Background()
	alice := roleClient(t, ca, base, pki.RoleSubmitter, "alice", "")
	auditor := roleClient(t, ca, base, pki.RoleAuditor, "carol", "")
	reader := roleClient(t, ca, base, pki.RoleAuditor, "bob", "")
	node := roleClient(t, ca, base, pki.RoleNode, "peer", cluster.NewNodeID().String())

	data := []byte("the confidential quarterly figures")
	put, err := alice.PutData(ctx, data, client.PutOptions{Threshold: 1, Readers: []string{"bob", "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.Submit(ctx, []byte("a public write"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	countWithheld := func(c *client.Client) (withheld, shown int) {
		bs, err := c.Blocks(ctx, 0, 1, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			for _, tx := range b.Txs {
				if tx.Tx.Kind != "shard" {
					continue
				}
				if tx.Withheld {
					withheld++
					if len(tx.TxBytes) != 0 || len(tx.Tx.Payload) != 0 || len(b.Raw) != 0 || len(b.HeaderRaw) == 0 {
						t.Fatal("a withheld transaction's bytes were served")
					}
				} else {
					shown++
				}
			}
		}
		return
	}
	if w, s := countWithheld(auditor); w == 0 || s != 0 {
		t.Fatalf("auditor not on the reader list: %d withheld, %d shown", w, s)
	}
	for name, c := range map[string]*client.Client{"reader": reader, "node": node} {
		if w, s := countWithheld(c); w != 0 || s == 0 {
			t.Fatalf("%s: %d withheld, %d shown", name, w, s)
		}
	}
	// The chain verifies for everyone, withheld or not.
	for name, c := range map[string]*client.Client{"auditor": auditor, "reader": reader} {
		if _, err := c.VerifyGroup(ctx, 0); err != nil {
			t.Fatalf("%s: chain does not verify: %v", name, err)
		}
	}
	// Shares: the reader gets them, the auditor does not.
	if got, _, err := reader.GetData(ctx, put.DataID, ""); err != nil || string(got) != string(data) {
		t.Fatalf("reader: %q %v", got, err)
	}
	if _, _, err := auditor.GetData(ctx, put.DataID, "bob"); err == nil {
		t.Fatal("an auditor off the reader list got the data by naming a reader in the header")
	}
}
