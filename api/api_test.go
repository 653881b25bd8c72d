package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
	"qledger/examples/functions/tiny"
)

func startAPI(t *testing.T, groups, replicas int) (*cluster.Local, *client.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: groups, Replicas: replicas, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv, err := New(DefaultConfig(), l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, c, ts.URL
}

func TestSubmitGetVerify(t *testing.T) {
	_, c, _ := startAPI(t, 2, 1)
	ctx := context.Background()
	g := 1
	rec, replayed, err := c.Submit(ctx, []byte("hello"), client.SubmitOptions{Group: &g})
	if err != nil || replayed || rec.Group != 1 || rec.Height != 1 || rec.Index != 0 {
		t.Fatalf("submit: %+v %v %v", rec, replayed, err)
	}
	tx, err := c.Tx(ctx, rec.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.Head(ctx, 1, "linearizable")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyTxAgainstHead(tx, head); err != nil {
		t.Fatal(err)
	}
	if string(tx.Tx.Payload) != "hello" || tx.Group != 1 {
		t.Fatalf("tx %+v", tx)
	}
	// A tampered response fails verification.
	bad := tx
	bad.TxBytes = append([]byte(nil), tx.TxBytes...)
	bad.TxBytes[len(bad.TxBytes)-1] ^= 1
	if err := client.VerifyTx(bad); !errors.Is(err, client.ErrVerify) {
		t.Fatalf("tampered tx verified: %v", err)
	}
	rep, err := c.VerifyGroup(ctx, 1)
	if err != nil || rep.Blocks != 1 || rep.Txs != 1 {
		t.Fatalf("verify group: %+v %v", rep, err)
	}
	// Group 0 is empty: height 0 and the empty root.
	h0, err := c.Head(ctx, 0, "")
	if err != nil || h0.Height != 0 || h0.LogRoot != chain.EmptyRoot().String() {
		t.Fatalf("empty head %+v %v", h0, err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	_, c, _ := startAPI(t, 3, 1)
	ctx := context.Background()
	first, replayed, err := c.Submit(ctx, []byte("pay 10"), client.SubmitOptions{IdempotencyKey: "order-7"})
	if err != nil || replayed {
		t.Fatal(err)
	}
	again, replayed, err := c.Submit(ctx, []byte("pay 10"), client.SubmitOptions{IdempotencyKey: "order-7"})
	if err != nil || !replayed || again != first {
		t.Fatalf("replay: %+v %v %v", again, replayed, err)
	}
	_, _, err = c.Submit(ctx, []byte("pay 99"), client.SubmitOptions{IdempotencyKey: "order-7"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 422 || !errors.Is(err, client.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
}

func TestConsistencyEndpoint(t *testing.T) {
	_, c, _ := startAPI(t, 1, 1)
	ctx := context.Background()
	var heads []client.Head
	for i := 0; i < 5; i++ {
		if _, _, err := c.Submit(ctx, []byte(fmt.Sprint(i)), client.SubmitOptions{}); err != nil {
			t.Fatal(err)
		}
		h, _ := c.Head(ctx, 0, "")
		heads = append(heads, h)
	}
	p, err := c.Consistency(ctx, 0, heads[1].LogSize, heads[4].LogSize, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyConsistency(p, heads[1].LogRoot, heads[4].LogRoot); err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyConsistency(p, heads[2].LogRoot, heads[4].LogRoot); !errors.Is(err, client.ErrVerify) {
		t.Fatalf("wrong trusted root accepted: %v", err)
	}
	blocks, err := c.Blocks(ctx, 0, 2, 2, "")
	if err != nil || len(blocks) != 2 || blocks[0].Height != 2 || blocks[1].Height != 3 {
		t.Fatalf("blocks: %v %v", len(blocks), err)
	}
	b, err := c.Block(ctx, 0, 3, "stale")
	if err != nil || b.Hash != blocks[1].Hash || len(b.Txs) != 1 {
		t.Fatalf("block: %v", err)
	}
}

func TestErrors(t *testing.T) {
	_, _, base := startAPI(t, 2, 1)
	big := `{"payload":"` + strings.Repeat("A", 3<<20) + `"}`
	tests := []struct {
		method, path, body string
		hdr                map[string]string
		status             int
		code               string
	}{
		{"POST", "/v1/tx", `not json`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":"***"}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":"", "extra":1}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":""} {}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":"", "group": 7}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":"", "group": -1}`, nil, 400, "bad_request"},
		{"POST", "/v1/tx", `{"payload":""}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, 400, "bad_request"},
		{"POST", "/v1/tx", big, nil, 413, "too_large"},
		{"GET", "/v1/tx/zz", "", nil, 400, "bad_request"},
		{"GET", "/v1/tx/" + strings.Repeat("ab", 32), "", nil, 404, "not_found"},
		{"GET", "/v1/tx/" + strings.Repeat("ab", 32) + "?level=strong", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/9/head", "", nil, 404, "not_found"},
		{"GET", "/v1/groups/x/head", "", nil, 404, "not_found"},
		{"GET", "/v1/groups/0/blocks/1", "", nil, 404, "not_found"},
		{"GET", "/v1/groups/0/blocks/0", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/0/blocks?limit=5000", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/0/blocks?from=-1", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/0/proof/consistency?from=1", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/0/proof/consistency?from=3&to=1", "", nil, 400, "bad_request"},
		{"GET", "/v1/groups/0/proof/consistency?from=1&to=99", "", nil, 400, "bad_request"},
		{"DELETE", "/v1/tx", "", nil, 405, "method_not_allowed"},
		{"GET", "/nope", "", nil, 404, "not_found"},
		{"POST", "/v1/cluster/join", `{"id":"zz","addr":"x"}`, nil, 400, "bad_request"},
		{"DELETE", "/v1/cluster/nodes/" + strings.Repeat("0", 64), "", nil, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 50)], func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !bytes.Contains(body, []byte(`"code":"`+tc.code+`"`)) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

func TestHealthReadyMetricsCluster(t *testing.T) {
	_, c, base := startAPI(t, 2, 1)
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || len(st.Groups) != 2 || !st.Groups[1].HasLeader || len(st.Groups[1].Members) != 1 {
		t.Fatalf("cluster: %+v %v", st, err)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func TestFunctionsDeployInvoke(t *testing.T) {
	_, c, base := startAPI(t, 2, 3)
	ctx := context.Background()
	code, _ := tiny.Module("tinyinc")
	dep, err := c.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1.0", Code: code})
	if err != nil || len(dep.Receipts) != 2 {
		t.Fatalf("deploy: %+v %v", dep, err)
	}
	fl, err := c.Functions(ctx)
	if err != nil || len(fl.Functions) != 1 || fl.Functions[0].CodeHash != dep.CodeHash {
		t.Fatalf("functions: %+v %v", fl, err)
	}
	for g := 0; g < 2; g++ {
		g := g
		res, err := c.Invoke(ctx, "inc", []byte(`{"value":100}`), &g)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Output) != `{"value":101}` || !res.Verified || res.Outcome != "ok" || res.Group != g {
			t.Fatalf("invoke: %+v", res)
		}
		if err := election.Verify(res.Election); err != nil {
			t.Fatal(err)
		}
		tx, err := c.Tx(ctx, res.Receipt.ID, "")
		if err != nil || tx.Tx.Kind != "exec" {
			t.Fatalf("record: %+v %v", tx, err)
		}
	}
	// A function that traps is recorded as an error outcome, never a success.
	trap, _ := tiny.Module("trap")
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "trap", Version: "1", Code: trap}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Invoke(ctx, "trap", nil, nil)
	if err != nil || res.Outcome != "trap" || !res.Agreed {
		t.Fatalf("trap: %+v %v", res, err)
	}
	// Bad input.
	if _, err := c.Invoke(ctx, "nope", nil, nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown function: %v", err)
	}
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "bad", Version: "1", Code: []byte("not wasm")}); err == nil {
		t.Fatal("garbage module deployed")
	}
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "Bad Name!", Version: "1", Code: code}); err == nil {
		t.Fatal("bad name deployed")
	}
	resp, err := http.Post(base+"/v1/functions/inc/invoke", "application/json", strings.NewReader(`{"input":"x"`))
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("malformed invoke: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}
