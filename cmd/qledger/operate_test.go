package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qledger/cluster"
	"qledger/server"
)

// TestTransferLeaderAndStatus runs cluster status and cluster
// transfer-leader against an embedded 1×3 cluster on a CA: status shows
// every member's version, raft lag and certificate expiry; the transfer,
// asked of any node, moves the leadership to the voter named by an ID
// prefix, and only an admin may ask.
func TestTransferLeaderAndStatus(t *testing.T) {
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	base.Version = "v-test"
	l := newCALab(t, server.LocalConfig{Groups: 1, Replicas: 3, Base: &base})
	lc, as := l.lc, l.as
	leader, ok := lc.Leader(0)
	if !ok {
		t.Fatal("no leader")
	}
	var target *cluster.Node
	for _, n := range lc.Nodes {
		if n != leader {
			target = n
		}
	}
	if r := as("submitter", "cluster", "transfer-leader", "--group", "0"); r.code != exitFailure || !strings.Contains(r.stderr, "403") {
		t.Fatalf("a submitter transferred leadership: %+v", r)
	}
	prefix := target.ID().String()[:10]
	r := as("admin", "cluster", "transfer-leader", "--group", "0", "--to", prefix)
	if r.code != exitOK || !strings.Contains(r.stdout, "to "+target.ID().String()[:16]) {
		t.Fatalf("transfer-leader --to %s: %+v", prefix, r)
	}
	for deadline := time.Now().Add(time.Minute); !target.IsLeader(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the named voter does not lead after the transfer")
		}
	}
	as("admin", "cluster", "transfer-leader", "--group", "0", "--to", "ffffffffffff").want(t, exitUsage, `no voter of the group has an ID starting "ffffffffffff"`)
	as("admin", "cluster", "transfer-leader", "--group", "3").want(t, exitUsage, "group 3 does not exist")

	// Status from the new leader knows every member's lag.
	for deadline := time.Now().Add(time.Minute); ; {
		r = cli(t, append([]string{"cluster", "status"}, l.flags("auditor", target.Info().APIAddr)...)...)
		if r.code == exitOK && strings.Count(r.stdout, "raft lag ?") == 0 && strings.Count(r.stdout, "version v-test") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status never showed three members with versions and lag: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(r.stdout, "certificate expires "+l.ca.Cert.NotAfter.UTC().Format("2006-01-02")); n != 3 {
		t.Fatalf("%d members show the CA's end of validity as their certificate's:\n%s", n, r.stdout)
	}
}

// TestAuditWatchEmptyChain checks that audit watch says an empty chain is
// empty instead of printing a blank hash and signer.
func TestAuditWatchEmptyChain(t *testing.T) {
	l := newCALab(t, server.LocalConfig{Groups: 1, Replicas: 1})
	r := l.as("auditor", "audit", "watch", "--once", "--state", filepath.Join(l.dir, "audit.json"))
	if r.code != exitOK || !strings.Contains(r.stdout, "group 0: trusted head 0 (an empty chain; nothing to verify yet)") {
		t.Fatalf("audit watch on an empty chain: %+v", r)
	}
}

// TestAuditWatchC2SP: audit watch --format c2sp trusts the first signed
// checkpoint of each group after opening it under an endorsed note key
// and rebuilding its root from the tiles, accepts a longer log through a
// tlog tree proof, and reports a trusted root the log does not extend.
func TestAuditWatchC2SP(t *testing.T) {
	l := newCALab(t, server.LocalConfig{Groups: 1, Replicas: 1})
	dir, as := l.dir, l.as
	submit := func(n int) {
		for i := range n {
			if r := as("submitter", "tx", "submit", fmt.Sprint("entry ", i)); r.code != exitOK {
				t.Fatalf("tx submit: %+v", r)
			}
		}
	}
	state := filepath.Join(dir, "audit.json")
	watch := func() ran {
		t.Helper()
		return as("auditor", "audit", "watch", "--once", "--format", "c2sp", "--state", state)
	}

	submit(3)
	if r := watch(); r.code != exitOK || !strings.Contains(r.stdout, "group 0: trusted checkpoint qledger/") {
		t.Fatalf("first pass: %+v", r)
	}
	submit(2)
	if r := watch(); r.code != exitOK || !strings.Contains(r.stdout, "extends the trusted log (tlog tree proof over the tiles verified)") {
		t.Fatalf("second pass: %+v", r)
	}

	// A trusted root the server's log does not extend: the auditor's
	// record of size 2 is replaced by another root.
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	cp := st["checkpoints"].(map[string]any)["0"].(map[string]any)
	cp["size"], cp["root"] = 2, base64.StdEncoding.EncodeToString(make([]byte, 32))
	b, _ = json.Marshal(st)
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := watch(); r.code == exitOK || !strings.Contains(r.stdout, "ALERT group 0: rewritten") {
		t.Fatalf("a pass against a forged trusted root: %+v", r)
	}
}
