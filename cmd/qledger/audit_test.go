package main

import (
	"testing"

	"qledger/chain"
	"qledger/cluster"
)

// TestTallyRecords counts each node's executions by how they ended and
// lists the records with a conflict, worst node first.
func TestTallyRecords(t *testing.T) {
	good, bad := chain.Hash{1}, chain.Hash{2}
	rec := func(agreed bool, conflict string, ex ...cluster.ExecOutcome) recordAt {
		return recordAt{group: 1, height: 7, rec: cluster.ExecRecord{Function: "inc", Agreed: agreed, Conflict: conflict, ResultHash: good, Executions: ex}}
	}
	nodes, conflicts := tallyRecords([]recordAt{
		rec(true, "", cluster.ExecOutcome{NodeID: "a", Hash: good}, cluster.ExecOutcome{NodeID: "b", Hash: good}),
		rec(true, "b disagreed; c broke the tie", cluster.ExecOutcome{NodeID: "a", Hash: good}, cluster.ExecOutcome{NodeID: "b", Hash: bad}, cluster.ExecOutcome{NodeID: "c", Hash: good}),
		rec(true, "", cluster.ExecOutcome{NodeID: "c", Err: "timeout"}, cluster.ExecOutcome{NodeID: "a", Hash: good}),
		rec(false, "no majority", cluster.ExecOutcome{NodeID: "a", Hash: good}, cluster.ExecOutcome{NodeID: "b", Hash: bad}),
	})
	want := []nodeTally{
		{Node: "b", Executions: 3, Disagreements: 1, NoAgreement: 1},
		{Node: "c", Executions: 2, Failures: 1},
		{Node: "a", Executions: 4, NoAgreement: 1},
	}
	if len(nodes) != len(want) {
		t.Fatalf("%d nodes, want %d", len(nodes), len(want))
	}
	for i, w := range want {
		if *nodes[i] != w {
			t.Errorf("node %d: %+v, want %+v", i, *nodes[i], w)
		}
	}
	if len(conflicts) != 2 || conflicts[0].Conflict != "b disagreed; c broke the tie" || conflicts[1].Agreed || conflicts[1].Height != 7 {
		t.Fatalf("conflicts %+v", conflicts)
	}
}
