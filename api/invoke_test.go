package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/examples/functions/tiny"
	"qledger/execrecord"
	"qledger/execute"
	"qledger/function"
	"qledger/pki"
)

// TestInvocationsByIDAndAsync: GET /v1/functions/{name}; a client-chosen
// request ID makes a retry return the recorded result; an asynchronous
// invocation answers 202 with its ID and GET /v1/invocations/{id} gives
// its state, then its committed record; routing is written in the record.
func TestInvocationsByIDAndAsync(t *testing.T) {
	_, c, _ := startAPI(t, 2, 1)
	ctx := context.Background()
	code, _ := tiny.Module("tinyinc")
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "2", Code: code}); err != nil {
		t.Fatal(err)
	}
	fi, err := c.Function(ctx, "inc")
	if err != nil || fi.Name != "inc" || fi.Version != "2" {
		t.Fatalf("function: %+v %v", fi, err)
	}
	if _, err := c.Function(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown function: %v", err)
	}

	rid := strings.Repeat("ab", 32)
	first, err := c.InvokeWith(ctx, "inc", client.InvokeRequest{Input: []byte(`{"value":7}`), RequestID: rid})
	if err != nil || string(first.Output) != `{"value":8}` || first.Replayed || first.RequestID != rid || first.Route != "least-load" {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := c.InvokeWith(ctx, "inc", client.InvokeRequest{Input: []byte(`{"value":7}`), RequestID: rid})
	if err != nil || !again.Replayed || again.Receipt != first.Receipt {
		t.Fatalf("retry: %+v %v (first %+v)", again, err, first.Receipt)
	}
	if _, err := c.InvokeWith(ctx, "inc", client.InvokeRequest{RequestID: "12"}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("short request ID: %v", err)
	}

	g := 1
	st, err := c.InvokeAsync(ctx, "inc", client.InvokeRequest{Input: []byte(`{"value":41}`), Group: &g})
	if err != nil || st.Status != "pending" || len(st.ID) != 64 || st.Group != 1 {
		t.Fatalf("async: %+v %v", st, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.Status == "pending" {
		if time.Now().After(deadline) {
			t.Fatal("async invocation still pending")
		}
		time.Sleep(20 * time.Millisecond)
		if st, err = c.Invocation(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.Status != "done" || st.Result == nil || string(st.Result.Output) != `{"value":42}` || st.Result.Route != "requested" {
		t.Fatalf("async result: %+v", st)
	}
	// The synchronous one is found on the chain by its ID.
	byID, err := c.Invocation(ctx, rid)
	if err != nil || byID.Status != "done" || byID.Result.Receipt != first.Receipt {
		t.Fatalf("by ID: %+v %v", byID, err)
	}
	if _, err := c.Invocation(ctx, strings.Repeat("00", 32)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown invocation: %v", err)
	}
	if _, err := c.Invocation(ctx, "xyz"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("bad invocation ID: %v", err)
	}
}

// TestDeployMultipart: a module uploaded as multipart/form-data deploys
// like the JSON form; bad forms are 400.
func TestDeployMultipart(t *testing.T) {
	_, c, base := startAPI(t, 1, 1)
	code, _ := tiny.Module("tinyinc")
	form := func(fields map[string]string, withCode bool) (*bytes.Buffer, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for k, v := range fields {
			_ = mw.WriteField(k, v)
		}
		if withCode {
			fw, _ := mw.CreateFormFile("code", "inc.wasm")
			_, _ = fw.Write(code)
		}
		mw.Close()
		return &b, mw.FormDataContentType()
	}
	body, ct := form(map[string]string{"name": "mp", "version": "3", "memory_pages": "2", "timeout_ms": "1500"}, true)
	resp, err := http.Post(base+"/v1/functions", ct, body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("multipart deploy: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	fi, err := c.Function(context.Background(), "mp")
	if err != nil || fi.Version != "3" || fi.MemoryPages != 2 || fi.TimeoutMillis != 1500 {
		t.Fatalf("deployed: %+v %v", fi, err)
	}
	for name, f := range map[string]map[string]string{
		"no code":       {"name": "x"},
		"bad number":    {"name": "x", "memory_pages": "-1"},
		"unknown field": {"name": "x", "colour": "red"},
	} {
		body, ct := form(f, name != "no code")
		resp, err := http.Post(base+"/v1/functions", ct, body)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%s: %v %v", name, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

// TestInvokeDisagreementAnswered: when the executions disagree with no
// majority, the record is committed and the API answers 409 no_agreement
// with that record in the body (not 500 without it), through a gateway on
// the group leader and through one on a follower (whose request is
// forwarded); a retry returns the same record, and GET
// /v1/invocations/{id} finds it.
func TestInvokeDisagreementAnswered(t *testing.T) {
	l, c, _ := startAPI(t, 1, 2)
	ctx := context.Background()
	code, _ := tiny.Module("tinyinc")
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1", Code: code}); err != nil {
		t.Fatal(err)
	}
	// Every node computes its own result: executor and verifier differ
	// and there is no third node to break the tie.
	for _, n := range l.Nodes {
		id := n.ID().String()
		n.SetExecHook(func(r execute.Result) execute.Result {
			r.Stdout = []byte(`{"node":"` + id + `"}`)
			r.Hash = function.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
			return r
		})
	}
	for i, n := range l.Nodes {
		srv, err := New(DefaultConfig(), n)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		gw, err := client.New(ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		rid := strings.Repeat(fmt.Sprintf("%02x", 0xc0+i), 32)
		body := `{"input":"e30=","request_id":"` + rid + `"}`
		resp, err := http.Post(ts.URL+"/v1/functions/inc/invoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var wire struct {
			Code   string `json:"code"`
			Error  string `json:"error"`
			Result *struct {
				RequestID string `json:"request_id"`
				Outcome   string `json:"outcome"`
				Agreed    bool   `json:"agreed"`
				Conflict  string `json:"conflict"`
				Receipt   struct {
					ID     string `json:"id"`
					Height uint64 `json:"height"`
				} `json:"receipt"`
			} `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&wire)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 409 || wire.Code != "no_agreement" || wire.Result == nil {
			t.Fatalf("gateway %d (leader %v): disagreement answered %d %+v (%v)", i, n.IsLeader(), resp.StatusCode, wire, err)
		}
		if r := wire.Result; r.RequestID != rid || r.Agreed || r.Outcome != "conflict" || r.Conflict == "" || r.Receipt.Height == 0 || r.Receipt.ID == "" {
			t.Fatalf("gateway %d: record in the body: %+v", i, *r)
		}

		again, err := gw.InvokeWith(ctx, "inc", client.InvokeRequest{Input: []byte("{}"), RequestID: rid})
		if !errors.Is(err, client.ErrNoAgreement) || !client.IsStatus(err, 409) {
			t.Fatalf("gateway %d: retry: %v", i, err)
		}
		if !again.Replayed || again.Agreed || again.Receipt.ID != wire.Result.Receipt.ID {
			t.Fatalf("gateway %d: retry record: %+v", i, again)
		}
		st, err := gw.Invocation(ctx, rid)
		if err != nil || st.Status != "done" || st.Result == nil || st.Result.Agreed || st.Result.Receipt.ID != wire.Result.Receipt.ID {
			t.Fatalf("gateway %d: by ID: %+v %v", i, st, err)
		}
	}
}

// TestInvokeRecordsOrigin: with OriginConfig the execution record keeps
// the client address and the selected headers (and only those); without
// it, neither (a version 2 record). The single node's answers are marked
// unverified.
func TestInvokeRecordsOrigin(t *testing.T) {
	l, c, _ := startAPI(t, 1, 1)
	ctx := context.Background()
	code, _ := tiny.Module("tinyinc")
	if _, err := c.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1", Code: code}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Origin = OriginConfig{ClientAddr: true, Headers: []string{"user-agent", "X-Request-Id", "X-Absent"}}
	srv, err := New(cfg, l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	record := func(base string) client.ExecRecord {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/functions/inc/invoke", strings.NewReader(`{"input":"eyJ2YWx1ZSI6MX0="}`))
		req.Header.Set("User-Agent", "origin-test/1")
		req.Header.Set("X-Request-Id", "abc-123")
		req.Header.Set("X-Secret", "never recorded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke: %v %v", resp.StatusCode, err)
		}
		defer resp.Body.Close()
		var out client.InvokeResponse
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		// One node: the executor alone, accepted and marked unverified.
		if !out.Agreed || out.Verified || !out.Unverified {
			t.Fatalf("a single-candidate call is not marked unverified: %+v", out)
		}
		tx, err := c.Tx(ctx, out.Receipt.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		x, err := client.DecodeExecRecord(tx.Tx.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := record(ts.URL)
	o := x.Origin
	if x.Version != execrecord.VersionOrigin || !strings.HasPrefix(o.ClientAddr, "127.0.0.1:") || len(o.Headers) != 2 ||
		o.Headers[0] != (execrecord.Header{Name: "User-Agent", Value: "origin-test/1"}) || o.Headers[1] != (execrecord.Header{Name: "X-Request-Id", Value: "abc-123"}) {
		t.Fatalf("recorded origin: version %d %+v", x.Version, o)
	}
	plain := startURL(t, l)
	if x := record(plain); x.Version != execrecord.Version || !x.Origin.IsZero() {
		t.Fatalf("without OriginConfig: version %d %+v", x.Version, x.Origin)
	}
}

// startURL serves node 0 with the default config and returns its URL.
func startURL(t *testing.T, l *cluster.Local) string {
	t.Helper()
	srv, err := New(DefaultConfig(), l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestInvocationOfAnotherCaller: invocation IDs are per caller; an
// auditor finds another caller's invocation by naming the caller, a
// submitter may not, and a malformed caller is 400.
func TestInvocationOfAnotherCaller(t *testing.T) {
	_, ca, base := tlsAPI(t)
	ctx := context.Background()
	admin := roleClient(t, ca, base, pki.RoleAdmin, "root", "")
	alice := roleClient(t, ca, base, pki.RoleSubmitter, "alice", "")
	mallory := roleClient(t, ca, base, pki.RoleSubmitter, "mallory", "")
	auditor := roleClient(t, ca, base, pki.RoleAuditor, "carol", "")
	code, _ := tiny.Module("tinyinc")
	if _, err := admin.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1", Code: code}); err != nil {
		t.Fatal(err)
	}
	rid := strings.Repeat("cd", 32)
	res, err := alice.InvokeWith(ctx, "inc", client.InvokeRequest{Input: []byte(`{"value":1}`), RequestID: rid})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditor.Invocation(ctx, rid); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the auditor's own invocation %s: %v", rid, err)
	}
	got, err := auditor.InvocationOf(ctx, "submitter:alice", rid)
	if err != nil || got.Result == nil || got.Result.Receipt != res.Receipt || got.Result.Caller != "submitter:alice" {
		t.Fatalf("alice's invocation as the auditor: %+v %v", got, err)
	}
	if _, err := mallory.InvocationOf(ctx, "submitter:alice", rid); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("another submitter's invocation: %v", err)
	}
	if got, err := alice.InvocationOf(ctx, "submitter:alice", rid); err != nil || got.Result.Receipt != res.Receipt {
		t.Fatalf("alice naming herself: %v", err)
	}
	if _, err := auditor.InvocationOf(ctx, "bad\ncaller", rid); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("malformed caller: %v", err)
	}
}
