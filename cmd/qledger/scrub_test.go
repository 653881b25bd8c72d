package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/chain"
	"qledger/cluster"
	"qledger/server"
)

// TestClusterScrubAndRepair runs cluster scrub and cluster repair against
// an embedded 1×3 cluster on a CA: scrub verifies every replica, repair
// rebuilds the one named by an ID prefix, and only an admin may ask.
func TestClusterScrubAndRepair(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := server.DevCA(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir, Groups: 1, Replicas: 3, CA: ca, Base: &base, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	for i := range 5 {
		if _, err := lc.Nodes[0].Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprint("w", i))}); err != nil {
			t.Fatal(err)
		}
	}
	as := func(role string, args ...string) ran {
		t.Helper()
		return cli(t, append(args, "--addr", lc.Addrs[0], "--ca", filepath.Join(tlsDir, "ca.pem"),
			"--cert", filepath.Join(tlsDir, role+".pem"), "--cert-key", filepath.Join(tlsDir, role+"-key.pem"))...)
	}
	if r := as("submitter", "cluster", "scrub", "--group", "0"); r.code != exitFailure || !strings.Contains(r.stderr, "403") {
		t.Fatalf("a submitter scrubbed: %+v", r)
	}
	as("admin", "cluster", "repair", "--group", "0").want(t, exitUsage, "usage: qledger cluster repair --group G --node N")
	var r ran
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		r = as("admin", "cluster", "scrub", "--group", "0")
		if r.code == exitOK && strings.Count(r.stdout, "verified") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrub: %+v", r)
		}
	}
	target := lc.Nodes[2].ID().String()
	r = as("admin", "cluster", "repair", "--group", "0", "--node", target[:10])
	if r.code != exitOK || !strings.Contains(r.stdout, "node "+target[:12]) || !strings.Contains(r.stdout, "rebuilt") {
		t.Fatalf("repair: %+v", r)
	}
	as("admin", "cluster", "scrub", "--group", "0", "--node", "ffffffffffff").want(t, exitFailure, "not found")
}
