package main

import (
	"testing"

	"qledger/chain"
	"qledger/execrecord"
)

// TestTallyRecords counts each node's executions by how they ended and
// lists the records with a conflict, worst node first.
func TestTallyRecords(t *testing.T) {
	good, bad := chain.Hash{1}, chain.Hash{2}
	rec := func(agreed bool, conflict string, ex ...execrecord.Execution) recordAt {
		return recordAt{group: 1, height: 7, rec: execrecord.Record{Function: "inc", Agreed: agreed, Conflict: conflict, ResultHash: good, Executions: ex}}
	}
	nodes, conflicts := tallyRecords([]recordAt{
		rec(true, "", execrecord.Execution{NodeID: "a", Hash: good}, execrecord.Execution{NodeID: "b", Hash: good}),
		rec(true, "b disagreed; c broke the tie", execrecord.Execution{NodeID: "a", Hash: good}, execrecord.Execution{NodeID: "b", Hash: bad}, execrecord.Execution{NodeID: "c", Hash: good}),
		rec(true, "", execrecord.Execution{NodeID: "c", Err: "timeout"}, execrecord.Execution{NodeID: "a", Hash: good}),
		rec(false, "no majority", execrecord.Execution{NodeID: "a", Hash: good}, execrecord.Execution{NodeID: "b", Hash: bad}),
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
