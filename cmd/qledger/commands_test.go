package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"qledger/cluster"
	"qledger/examples/functions/tiny"
	"qledger/server"
)

// TestCommandsAgainstACluster runs the client verbs in process against an
// embedded one-node cluster and checks what each prints, as text and in
// the JSON shape scripts read.
func TestCommandsAgainstACluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: t.TempDir(), Groups: 1, Replicas: 1, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	addr := []string{"--addr", lc.Addrs[0]}
	run := func(args ...string) ran { t.Helper(); return cli(t, append(args, addr...)...) }

	var receipt struct {
		ID     string `json:"id"`
		Group  int    `json:"group"`
		Height uint64 `json:"height"`
	}
	decodeJSON(t, run("tx", "submit", "--json", "--key", "k1", "hello"), &receipt)
	if receipt.ID == "" || receipt.Height == 0 {
		t.Fatalf("tx submit --json: %+v", receipt)
	}
	if r := run("tx", "submit", "--key", "k1", "hello"); r.code != exitOK || !strings.Contains(r.stdout, "replayed") {
		t.Fatalf("tx submit, same key again: %+v", r)
	}
	var got struct {
		Tx       struct{ ID string } `json:"tx"`
		Verified bool                `json:"verified"`
	}
	decodeJSON(t, run("tx", "get", "--output", "json", receipt.ID), &got)
	if got.Tx.ID != receipt.ID || !got.Verified {
		t.Fatalf("tx get --output json: %+v", got)
	}
	if r := run("tx", "get", receipt.ID); !strings.Contains(r.stdout, "inclusion proof: verified here") {
		t.Fatalf("tx get: %+v", r)
	}

	t.Run("chain", func(t *testing.T) { chainVerbs(t, run) })
	t.Run("cluster", func(t *testing.T) { clusterVerbs(t, run) })
	t.Run("fn", func(t *testing.T) { fnVerbs(t, run) })
	t.Run("data", func(t *testing.T) { dataVerbs(t, run) })
	t.Run("audit", func(t *testing.T) { auditVerbs(t, run) })
}

func chainVerbs(t *testing.T, run func(...string) ran) {
	var heads []struct {
		Group  int    `json:"group"`
		Height uint64 `json:"height"`
		Hash   string `json:"hash"`
	}
	decodeJSON(t, run("chain", "head", "--json"), &heads)
	if len(heads) != 1 || heads[0].Height == 0 || len(heads[0].Hash) != 64 {
		t.Fatalf("chain head --json: %+v", heads)
	}
	if r := run("chain", "head", "--group", "0"); r.code != exitOK || !strings.HasPrefix(r.stdout, "group 0: height ") {
		t.Fatalf("chain head: %+v", r)
	}
	var block struct {
		Height uint64 `json:"height"`
		Txs    []any  `json:"txs"`
	}
	decodeJSON(t, run("chain", "show", "--json"), &block)
	if block.Height != heads[0].Height || len(block.Txs) == 0 {
		t.Fatalf("chain show --json: %+v", block)
	}
	var reports []struct {
		Group int    `json:"group"`
		OK    bool   `json:"ok"`
		Head  string `json:"head"`
	}
	decodeJSON(t, run("chain", "verify", "--json"), &reports)
	if len(reports) != 1 || !reports[0].OK || reports[0].Head == "" {
		t.Fatalf("chain verify --json: %+v", reports)
	}
	if r := run("chain", "verify"); !strings.Contains(r.stdout, "group 0: ok") {
		t.Fatalf("chain verify: %+v", r)
	}
}

func clusterVerbs(t *testing.T, run func(...string) ran) {
	var st struct {
		Groups []struct {
			Group     int  `json:"group"`
			HasLeader bool `json:"has_leader"`
		} `json:"groups"`
	}
	decodeJSON(t, run("cluster", "status", "--json"), &st)
	if len(st.Groups) != 1 || !st.Groups[0].HasLeader {
		t.Fatalf("cluster status --json: %+v", st)
	}
	if r := run("cluster", "status"); !strings.Contains(r.stdout, "group 0: leader ") {
		t.Fatalf("cluster status: %+v", r)
	}
	id := strings.Repeat("ab", 32)
	r := run("cluster", "join", "--id", id, "--raft-addr", "127.0.0.1:1")
	if r.code != exitOK || r.stdout != "node "+short(id)+" joined\n" {
		t.Fatalf("cluster join: %+v", r)
	}
	if r := run("cluster", "status"); !strings.Contains(r.stdout, short(id)) {
		t.Fatalf("cluster status after the join lacks %s:\n%s", short(id), r.stdout)
	}
	var removed struct {
		ID      string `json:"id"`
		Removed bool   `json:"removed"`
	}
	decodeJSON(t, run("cluster", "remove", "--json", id), &removed)
	if removed.ID != id || !removed.Removed {
		t.Fatalf("cluster remove --json: %+v", removed)
	}
}

func fnVerbs(t *testing.T, run func(...string) ran) {
	code, ok := tiny.Module("tinyinc")
	if !ok {
		t.Fatal("no tiny module tinyinc")
	}
	wasm := filepath.Join(t.TempDir(), "inc.wasm")
	if err := os.WriteFile(wasm, code, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run("fn", "deploy", "inc", wasm, "--memory-pages", "2", "--timeout", "2s", "--request-timeout", "20s"); r.code != exitOK || !strings.HasPrefix(r.stdout, "deployed inc 1 ") {
		t.Fatalf("fn deploy: %+v", r)
	}
	if r := run("fn", "ls"); r.code != exitOK || !strings.HasPrefix(r.stdout, "inc") || !strings.Contains(r.stdout, "2 pages  2000 ms") {
		t.Fatalf("fn ls: %+v", r)
	}
	var ls struct {
		Functions []struct {
			Name string `json:"name"`
		} `json:"functions"`
	}
	decodeJSON(t, run("fn", "ls", "--json"), &ls)
	if len(ls.Functions) != 1 || ls.Functions[0].Name != "inc" {
		t.Fatalf("fn ls --json: %+v", ls)
	}
	var inv struct {
		Output  []byte `json:"output"`
		Outcome string `json:"outcome"`
	}
	decodeJSON(t, run("fn", "invoke", "--json", "inc", "--data", `{"value":41}`), &inv)
	if inv.Outcome != "ok" || !strings.Contains(string(inv.Output), "42") {
		t.Fatalf("fn invoke --json: %+v", inv)
	}
	if r := run("fn", "invoke", "inc", `{"value":1}`); r.code != exitOK || !strings.Contains(r.stdout, "2") || !strings.Contains(r.stderr, "outcome ok") {
		t.Fatalf("fn invoke, payload as argument: %+v", r)
	}
	var async struct {
		ID string `json:"id"`
	}
	decodeJSON(t, run("fn", "invoke", "--async", "--json", "inc", "--data", `{"value":1}`), &async)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := run("fn", "status", async.ID)
		if r.code == exitOK && strings.Contains(r.stderr, "outcome ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fn status %s: %+v", async.ID, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dataVerbs(t *testing.T, run func(...string) ran) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("shared across groups"), 0o600); err != nil {
		t.Fatal(err)
	}
	var put struct {
		DataID string `json:"data_id"`
		Shares int    `json:"shares"`
		Bytes  int    `json:"bytes"`
	}
	decodeJSON(t, run("data", "put", in, "--threshold", "1", "--id", "item-1", "--description", "cli test", "--json"), &put)
	if put.DataID != "item-1" || put.Shares != 1 || put.Bytes != 20 {
		t.Fatalf("data put --json: %+v", put)
	}
	if r := run("data", "ls", "--description", "cli"); r.code != exitOK || !strings.HasPrefix(r.stdout, "item-1  ") || !strings.Contains(r.stdout, `"cli test"`) {
		t.Fatalf("data ls: %+v", r)
	}
	var ls struct {
		Items []struct {
			DataID string `json:"data_id"`
		} `json:"items"`
	}
	decodeJSON(t, run("data", "ls", "--json"), &ls)
	if len(ls.Items) != 1 || ls.Items[0].DataID != "item-1" {
		t.Fatalf("data ls --json: %+v", ls)
	}
	if r := run("data", "ls", "--description", "nothing like it"); r.code != exitOK || r.stdout != "" {
		t.Fatalf("data ls, no match: %+v", r)
	}
	out := filepath.Join(dir, "out.txt")
	if r := run("data", "get", "item-1", "-o", out); r.code != exitOK || !strings.Contains(r.stdout, "digest checked") {
		t.Fatalf("data get: %+v", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "shared across groups" {
		t.Fatalf("data get wrote %q", b)
	}
	shares := filepath.Join(dir, "shares")
	if r := run("data", "export-shares", "item-1", shares); r.code != exitOK || !strings.Contains(r.stdout, "item-1.share-0.json") {
		t.Fatalf("data export-shares: %+v", r)
	}
	var export struct {
		Files      []string `json:"files"`
		Sufficient bool     `json:"sufficient"`
	}
	decodeJSON(t, run("data", "export-shares", "--output", "json", "item-1", shares), &export)
	if len(export.Files) != 1 || !export.Sufficient {
		t.Fatalf("data export-shares --output json: %+v", export)
	}
	var recovered struct {
		Bytes  int    `json:"bytes"`
		Scheme string `json:"scheme"`
	}
	decodeJSON(t, cli(t, "data", "recover", shares, "-o", filepath.Join(dir, "recovered"), "--json"), &recovered)
	if recovered.Bytes != 20 || recovered.Scheme != "dispersal" {
		t.Fatalf("data recover --json: %+v", recovered)
	}
}

func auditVerbs(t *testing.T, run func(...string) ran) {
	state := filepath.Join(t.TempDir(), "audit.json")
	if r := run("audit", "watch", "--once", "--state", state); r.code != exitOK || !strings.Contains(r.stdout, "group 0: trusted head") {
		t.Fatalf("audit watch --once: %+v", r)
	}
	var conflicts struct {
		Records   int   `json:"records"`
		Nodes     []any `json:"nodes"`
		Conflicts []any `json:"conflicts"`
	}
	decodeJSON(t, run("audit", "conflicts", "--json"), &conflicts)
	if conflicts.Records < 1 || len(conflicts.Nodes) != 1 || len(conflicts.Conflicts) != 0 {
		t.Fatalf("audit conflicts --json: %+v", conflicts)
	}
	var elections struct {
		Records int   `json:"records"`
		Failed  []any `json:"failed"`
	}
	decodeJSON(t, run("audit", "elections", "--json", "--group", "0"), &elections)
	if elections.Records != conflicts.Records || len(elections.Failed) != 0 {
		t.Fatalf("audit elections --json: %+v", elections)
	}
}

// TestBenchSmoke runs qledger bench with tiny parameters: one baseline
// and one ledger run, each printed with its ratio.
func TestBenchSmoke(t *testing.T) {
	r := cli(t, "bench", "--clients", "1", "--payloads", "16", "--groups", "", "--http=false", "--replicas", "1",
		"--duration", "200ms", "--warmup", "20ms")
	if r.code != exitOK {
		t.Fatalf("bench: %+v", r)
	}
	for _, want := range []string{"qledger bench: 1 replicas per group", "bare raft (baseline)", "qledger 1 group", "×"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "errors)") {
		t.Fatalf("bench counted errors:\n%s", r.stdout)
	}
}

// TestDevAutoscale: qledger dev's autoscaler (devAutoscale with the
// flags dev registers; TestUsageErrors checks that dev validates them) on dev's embedded cluster of one group of three
// voters starts an executor node for invocations made through the CLI,
// shows the decision in cluster status (asked of a follower: it shows the
// leader's), and goes back to zero after
// idling, the voters untouched.
func TestDevAutoscale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := cluster.DefaultConfig()
	base.DevTiming()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: t.TempDir(), Groups: 1, Replicas: 3, Logger: hclog.NewNullLogger(), Base: &base})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	voterNodes := append([]*cluster.Node(nil), lc.Nodes...) // the autoscaler appends executors to lc.Nodes
	voters := len(voterNodes)
	var o devOptions
	fs := pflag.NewFlagSet("dev", pflag.ContinueOnError)
	o.scale.registerRule(fs, "")
	if err := fs.Parse([]string{"--autoscale", "--autoscale-max", "1", "--autoscale-target", "1", "--autoscale-interval", "200ms", "--autoscale-down-window", "500ms", "--autoscale-idle", "2s"}); err != nil {
		t.Fatal(err)
	}
	if err := devAutoscale(lc, o.scale.cfg); err != nil {
		t.Fatal(err)
	}
	addr := []string{"--addr", lc.Addrs[0]}
	run := func(args ...string) ran { t.Helper(); return cli(t, append(args, addr...)...) }
	code, ok := tiny.Module("tinyinc")
	if !ok {
		t.Fatal("no tiny module tinyinc")
	}
	wasm := filepath.Join(t.TempDir(), "inc.wasm")
	if err := os.WriteFile(wasm, code, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run("fn", "deploy", "inc", wasm); r.code != exitOK {
		t.Fatalf("fn deploy: %+v", r)
	}
	executors := func() int { n, _ := lc.Executors(context.Background(), 0); return n }
	for deadline := time.Now().Add(time.Minute); executors() == 0; {
		if r := run("fn", "invoke", "inc", `{"value":1}`); r.code != exitOK {
			t.Fatalf("fn invoke: %+v", r)
		}
		if time.Now().After(deadline) {
			t.Fatal("no executor started for a minute of invocations")
		}
	}
	var st struct {
		Groups []struct {
			Voters    int `json:"voters"`
			Autoscale *struct {
				Executors int    `json:"executors"`
				Reason    string `json:"reason"`
			} `json:"autoscale"`
		} `json:"groups"`
	}
	// Any voter's status shows the leader's decision: ask a follower.
	followerAddr := func() string {
		for i, n := range voterNodes {
			if !n.IsLeader() {
				return lc.Addrs[i]
			}
		}
		return lc.Addrs[0]
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		decodeJSON(t, cli(t, "cluster", "status", "--json", "--addr", followerAddr()), &st)
		if len(st.Groups) == 1 && st.Groups[0].Autoscale != nil && st.Groups[0].Autoscale.Executors == 0 && executors() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to zero executors after idling: %d running, status %+v", executors(), st.Groups)
		}
	}
	if !strings.Contains(st.Groups[0].Autoscale.Reason, "idle") {
		t.Fatalf("the decision back to zero: %q", st.Groups[0].Autoscale.Reason)
	}
	if st.Groups[0].Voters != voters {
		t.Fatalf("%d voters after scaling, want the %d there were", st.Groups[0].Voters, voters)
	}
}
