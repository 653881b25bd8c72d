package main

import (
	"strings"
	"testing"
	"time"

	"qledger/api/client"
)

func TestPrintClusterShowsChainAlarms(t *testing.T) {
	st := client.ClusterStatus{
		Node:       client.NodeInfo{ID: strings.Repeat("a", 64)},
		ChainAlarm: &client.ChainAlarm{Node: strings.Repeat("a", 64), Height: 17, What: "chain: transaction Merkle root mismatch", Source: "scrub"},
		Groups: []client.GroupStatus{{HasLeader: true, Leader: strings.Repeat("b", 64),
			ChainAlarms: []client.ChainAlarm{{Node: strings.Repeat("c", 64), Height: 9, What: "chain: height gap", Source: "gossip"}}}},
	}
	var out strings.Builder
	printCluster(&out, st, nil, time.Now())
	for _, want := range []string{
		"CHAIN ALARM on this node: group 0 damaged at height 17: chain: transaction Merkle root mismatch (found by scrub)",
		"CHAIN ALARM: node " + short(strings.Repeat("c", 64)) + ": damaged at height 9: chain: height gap (gossip)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}
