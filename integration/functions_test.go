package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qledger/examples/functions/tiny"
)

// TestMultiProcessByzantineExecutor runs three `qledger node` processes, one
// started with --test-wrong-results. Invocations through the CLI are
// outvoted where the forger takes part, its conflicts are in the records,
// `qledger audit conflicts` names it, `chain show` renders the records,
// `chain verify` still passes; an asynchronous invocation is polled with
// `fn status`, and a retry with the same request ID is a replay.
func TestMultiProcessByzantineExecutor(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), "--bootstrap")
	waitFor(t, "node a ready", 20*time.Second, func() bool { return ready(ctx, a.client()) })
	b := startProc(t, filepath.Join(root, "b"), freePort(t), freePort(t), "--join", a.gossip)
	liar := startProc(t, filepath.Join(root, "liar"), freePort(t), freePort(t), "--join", a.gossip, "--test-wrong-results")
	waitFor(t, "three voters", 30*time.Second, func() bool {
		v, all, leader := members(ctx, b.client())
		return v == 3 && all == 3 && leader
	})
	addr := "http://" + a.http
	code, _ := tiny.Module("tinyinc")
	wasm := filepath.Join(root, "inc.wasm")
	if err := os.WriteFile(wasm, code, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "fn", "deploy", "--addr", addr, "inc", wasm, "--memory-pages", "1", "--timeout", "2s"); err != nil {
		t.Fatalf("fn deploy: %v\n%s", err, out)
	}
	for i := 0; i < 12; i++ {
		out, err := run(t, "fn", "invoke", "--addr", "http://"+b.http, "--json", "inc", "--data", `{"value":100}`)
		if err != nil {
			t.Fatalf("fn invoke: %v\n%s", err, out)
		}
		var res struct {
			Output   []byte `json:"output"`
			Verified bool   `json:"verified"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || string(res.Output) != `{"value":101}` || !res.Verified {
			t.Fatalf("invocation %d: %v %s", i, err, out)
		}
	}
	out, err := run(t, "audit", "conflicts", "--addr", addr, "--json")
	if err != nil {
		t.Fatalf("audit conflicts: %v\n%s", err, out)
	}
	var rep struct {
		Records int `json:"records"`
		Nodes   []struct {
			Node          string `json:"node"`
			Disagreements int    `json:"disagreements"`
		} `json:"nodes"`
		Conflicts []struct{ Conflict string } `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Records != 12 || len(rep.Conflicts) == 0 {
		t.Fatalf("audit conflicts output: %v\n%s", err, out)
	}
	liarID := nodeID(t, liar)
	for _, n := range rep.Nodes {
		if (n.Node == liarID) != (n.Disagreements > 0) {
			t.Fatalf("audit conflicts blames the wrong nodes (forger %.12s): %s", liarID, out)
		}
	}
	if out, err := run(t, "chain", "show", "--addr", addr); err != nil || !strings.Contains(out, "execution record") || !strings.Contains(out, "election:") {
		t.Fatalf("chain show: %v\n%s", err, out)
	}
	if out, err := run(t, "chain", "verify", "--addr", addr); err != nil || !strings.Contains(out, "group 0: ok") {
		t.Fatalf("chain verify: %v\n%s", err, out)
	}

	// Asynchronous, then by ID; a retry with the same ID is a replay.
	out, err = run(t, "fn", "invoke", "--addr", addr, "--async", "--json", "inc", "--data", `{"value":1}`)
	var st struct{ ID, Status string }
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Status != "pending" {
		t.Fatalf("async invoke: %v\n%s", err, out)
	}
	waitFor(t, "the async invocation", 10*time.Second, func() bool {
		out, err := run(t, "fn", "status", "--addr", addr, "--json", st.ID)
		return err == nil && strings.Contains(out, `"status": "done"`)
	})
	rid := strings.Repeat("5a", 32)
	for i, want := range []string{"", "replayed"} {
		out, err := run(t, "fn", "invoke", "--addr", addr, "--request-id", rid, "inc", "--data", `{"value":5}`)
		if err != nil || !strings.Contains(out, `{"value":6}`) || (want != "") != strings.Contains(out, "replayed") {
			t.Fatalf("invoke %d with request ID: %v\n%s", i, err, out)
		}
	}
}

// nodeID is the ID a node process reports about itself.
func nodeID(t *testing.T, p *proc) string {
	t.Helper()
	st, err := p.client().Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Node.ID
}
