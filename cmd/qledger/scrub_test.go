package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"qledger/chain"
	"qledger/cluster"
	"qledger/server"
)

// TestClusterScrubAndRepair runs cluster scrub and cluster repair against
// an embedded 1×3 cluster on a CA: scrub verifies every replica, repair
// rebuilds the one named by an ID prefix, and only an admin may ask.
func TestClusterScrubAndRepair(t *testing.T) {
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	l := newCALab(t, server.LocalConfig{Groups: 1, Replicas: 3, Base: &base})
	lc, ctx, as := l.lc, l.ctx, l.as
	for i := range 5 {
		if _, err := lc.Nodes[0].Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprint("w", i))}); err != nil {
			t.Fatal(err)
		}
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
