package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"qledger/chain"
	"qledger/cluster"
	"qledger/fsm"
	"qledger/function"
	"qledger/pki"
)

// fakeCluster answers every Cluster call from a fixed two-block chain, so
// a fuzzer exercises the handlers' parsing, access checks and encoding
// without raft.
type fakeCluster struct {
	blocks [][]byte
	head   chain.Header
	txs    [][]byte
}

func newFakeCluster(t testing.TB) *fakeCluster {
	f := &fakeCluster{}
	var log chain.Frontier
	var prev *chain.Header
	for h := 1; h <= 2; h++ {
		tx := chain.Tx{Kind: chain.TxData, Payload: []byte("fuzz"), Submitter: "submitter:alice"}
		raw := tx.Encode()
		b, err := chain.NextBlock(prev, 0, int64(h), [][]byte{raw}, &log, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.blocks = append(f.blocks, b.Encode())
		f.txs = append(f.txs, raw)
		f.head = b.Header
		prev = &f.head
	}
	return f
}

func (f *fakeCluster) Groups() int { return 2 }
func (f *fakeCluster) Submit(ctx context.Context, t chain.Tx) (cluster.Receipt, error) {
	return cluster.Receipt{ID: chain.TxID(t.Encode()), Group: int(t.Group), Height: 3}, nil
}
func (f *fakeCluster) Tx(ctx context.Context, id chain.Hash, group int, level cluster.Level) (fsm.TxRecord, int, error) {
	if id != chain.TxID(f.txs[0]) {
		return fsm.TxRecord{}, 0, cluster.ErrNotFound
	}
	return fsm.TxRecord{ID: id, TxBytes: f.txs[0], LeafHash: chain.LeafHash(f.txs[0]), TreeSize: 1, Root: chain.LeafHash(f.txs[0])}, 0, nil
}
func (f *fakeCluster) Head(ctx context.Context, group int, level cluster.Level) (chain.Header, bool, error) {
	return f.head, true, nil
}
func (f *fakeCluster) SignedHead(ctx context.Context, group int, level cluster.Level) (cluster.SignedHead, error) {
	return cluster.SignedHead{Header: f.head, OK: group == 0}, nil
}
func (f *fakeCluster) Block(ctx context.Context, group int, height uint64, level cluster.Level) ([]byte, error) {
	if height < 1 || height > uint64(len(f.blocks)) {
		return nil, cluster.ErrNotFound
	}
	return f.blocks[height-1], nil
}
func (f *fakeCluster) Blocks(ctx context.Context, group int, from uint64, limit int, level cluster.Level) ([][]byte, error) {
	var out [][]byte
	for h := from; h >= 1 && h <= uint64(len(f.blocks)) && len(out) < limit; h++ {
		out = append(out, f.blocks[h-1])
	}
	return out, nil
}
func (f *fakeCluster) Consistency(ctx context.Context, group int, from, to uint64, level cluster.Level) (cluster.ConsistencyProof, error) {
	if from > to || to > 2 {
		return cluster.ConsistencyProof{}, cluster.ErrBadRequest
	}
	return cluster.ConsistencyProof{From: from, To: to}, nil
}
func (f *fakeCluster) Status(ctx context.Context) cluster.ClusterStatus {
	return cluster.ClusterStatus{}
}
func (f *fakeCluster) Ready(ctx context.Context) (bool, cluster.ClusterStatus) {
	return true, cluster.ClusterStatus{}
}
func (f *fakeCluster) Join(ctx context.Context, node cluster.NodeInfo) (cluster.JoinResponse, error) {
	return cluster.JoinResponse{}, cluster.ErrBadRequest
}
func (f *fakeCluster) Remove(ctx context.Context, id string) error { return cluster.ErrNotFound }
func (f *fakeCluster) Scrub(ctx context.Context, req cluster.ScrubRequest) ([]cluster.ScrubReport, error) {
	return nil, cluster.ErrNotFound
}
func (f *fakeCluster) Repair(ctx context.Context, req cluster.ScrubRequest) ([]cluster.ScrubReport, error) {
	return nil, cluster.ErrNotFound
}
func (f *fakeCluster) ItemPage(ctx context.Context, group int, dataID string, from, limit int, level cluster.Level) (fsm.ItemMeta, []fsm.TxRecord, error) {
	return fsm.ItemMeta{}, nil, cluster.ErrNotFound
}
func (f *fakeCluster) Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	return cluster.InvokeResult{}, cluster.ErrNotFound
}
func (f *fakeCluster) Functions(ctx context.Context) ([]fsm.FunctionMeta, error) { return nil, nil }
func (f *fakeCluster) Invocation(ctx context.Context, caller string, rid [32]byte) (cluster.InvokeResult, error) {
	return cluster.InvokeResult{}, cluster.ErrNotFound
}
func (f *fakeCluster) CheckDeployment(ctx context.Context, d function.Deployment) error {
	return cluster.ErrBadRequest
}
func (f *fakeCluster) Items(ctx context.Context, group int, filter string, level cluster.Level) ([]fsm.ItemMeta, error) {
	return nil, nil
}

// FuzzHandlers sends arbitrary methods, paths, headers and bodies to the
// API as any role. No request may panic the server, every error is the
// JSON error body, and a caller's role never gets past its access class.
func FuzzHandlers(f *testing.F) {
	ca, err := pki.NewCA("fuzz", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	var certs []*x509.Certificate
	for _, r := range pki.Roles {
		id := ""
		if r == pki.RoleNode {
			id = strings.Repeat("ab", 32)
		}
		is, err := ca.Issue(pki.Leaf{CommonName: "fuzz-" + string(r), Role: r, Client: true, NodeID: id})
		if err != nil {
			f.Fatal(err)
		}
		c, _ := x509.ParseCertificate(is.TLS.Certificate[0])
		certs = append(certs, c)
	}
	node, _ := ca.Issue(pki.Leaf{CommonName: "server", Role: pki.RoleNode, NodeID: strings.Repeat("cd", 32)})
	creds, err := pki.NewCredentials(ca.PEM, node.TLS)
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.TLS = creds
	cfg.RatePerCaller = 0
	srv, err := New(cfg, newFakeCluster(f))
	if err != nil {
		f.Fatal(err)
	}
	txID := chain.TxID(newFakeCluster(f).txs[0]).String()
	seeds := []struct {
		method, path, key string
		body              []byte
		role              uint8
	}{
		{"POST", "/v1/tx", "", []byte(`{"payload":"aGk=","group":1}`), 1},
		{"POST", "/v1/tx", "k1", []byte(`{"payload":"aGk="}trailing`), 1},
		{"POST", "/v1/tx", "", []byte(`{"payload":"!!"}`), 1},
		{"POST", "/v1/tx", "\x00bad", []byte(`{"payload":""}`), 4},
		{"GET", "/v1/tx/" + txID, "", nil, 1},
		{"GET", "/v1/tx/" + txID + "?group=9", "", nil, 2},
		{"GET", "/v1/tx/zz", "", nil, 2},
		{"GET", "/v1/groups/0/head?level=linearizable", "", nil, 2},
		{"GET", "/v1/groups/-1/head", "", nil, 2},
		{"GET", "/v1/groups/0/blocks/1", "", nil, 2},
		{"GET", "/v1/groups/0/blocks?from=0&limit=99999", "", nil, 2},
		{"GET", "/v1/groups/0/proof/consistency?from=2&to=1", "", nil, 3},
		{"POST", "/v1/cluster/join", "", []byte(`{"id":"x"}`), 3},
		{"DELETE", "/v1/cluster/nodes/abc", "", nil, 3},
		{"POST", "/v1/functions", "", []byte(`{"name":"f","code":"AGFzbQEAAAA="}`), 3},
		{"POST", "/v1/functions/f/invoke", "", []byte(`{"input":"e30=","group":7}`), 1},
		{"POST", "/v1/data/x/shares/0", "", []byte(`{"shares":2}`), 1},
		{"GET", "/v1/data/x/shares/5", "", nil, 0},
		{"POST", "/v1/session", "", []byte{0, 1, 2}, 1},
		{"PUT", "/v1/tx", "", nil, 1},
		{"GET", "/nope/../v1/cluster", "", nil, 255},
		{"GET", "/v1/functions/f", "", nil, 2},
		{"POST", "/v1/functions/f/invoke?async=1", "", []byte(`{"input":"","request_id":"zz"}`), 1},
		{"GET", "/v1/invocations/" + txID, "", nil, 1},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.key, s.body, s.role)
	}
	f.Fuzz(func(t *testing.T, method, path, key string, body []byte, role uint8) {
		if len(path) == 0 || path[0] != '/' || len(body) > 1<<16 {
			return
		}
		req, err := http.NewRequest(method, "https://node"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key}
		}
		var who pki.Role
		if int(role) < len(certs) {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certs[role]}}
			who = pki.Roles[role]
		} else {
			req.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 400 {
			var e struct{ Code string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code == "" {
				t.Fatalf("%s %s: %d without a JSON error body: %q", method, path, w.Code, w.Body.String())
			}
		}
		if w.Code < 300 && who == "" && path != "/healthz" && path != "/readyz" && !strings.HasPrefix(path, "/healthz?") && !strings.HasPrefix(path, "/readyz?") {
			t.Fatalf("%s %s succeeded without a certificate: %d", method, path, w.Code)
		}
		if w.Code < 300 && (who == pki.RoleAuditor) && method == "POST" {
			t.Fatalf("an auditor's %s %s succeeded: %d", method, path, w.Code)
		}
	})
}
func (f *fakeCluster) LogNodes(ctx context.Context, group int, level uint8, from uint64, count int, lv cluster.Level) ([]chain.Hash, error) {
	if level != 0 || from+uint64(count) > uint64(len(f.txs)) {
		return nil, cluster.ErrBadRequest
	}
	var out []chain.Hash
	for _, tx := range f.txs[from : from+uint64(count)] {
		out = append(out, chain.LeafHash(tx))
	}
	return out, nil
}
