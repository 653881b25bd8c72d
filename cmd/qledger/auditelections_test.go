package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"qledger/chain"
	"qledger/election"
	"qledger/execrecord"
	"qledger/fsm"
	"qledger/function"
)

// validRecord is the record of a single-candidate election whose executor
// printed out.
func validRecord(t *testing.T, seq byte, out string) execrecord.Record {
	t.Helper()
	rid := sha256.Sum256([]byte{seq})
	key, err := election.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), rid[:])
	if err != nil {
		t.Fatal(err)
	}
	el, err := election.Elect(key, "key-1", rid[:], []election.Reveal{{NodeID: "node-a", Nonce: [election.Size]byte{seq}}})
	if err != nil {
		t.Fatal(err)
	}
	h := function.ResultHash(function.OutcomeOK, 0, []byte(out))
	return execrecord.Record{Version: execrecord.Version, RequestID: rid, Function: "inc", FnVersion: "1", InputHash: sha256.Sum256(nil),
		Election: el, Executor: "node-a", Executions: []execrecord.Execution{{NodeID: "node-a", Outcome: function.OutcomeOK, Stdout: []byte(out), Hash: h}},
		Agreed: true, ResultHash: h, Outcome: function.OutcomeOK, Response: []byte(out)}
}

func marshal(t *testing.T, r execrecord.Record) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// audit elections --data reads a stopped node's store and re-checks its
// records; --from skips the heights before it.
func TestAuditElectionsOffline(t *testing.T) {
	dir := t.TempDir()
	s, err := fsm.OpenStore(filepath.Join(dir, fsm.StoreFile), 0, fsm.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(s, nil)
	for i := byte(1); i <= 2; i++ {
		x := chain.Tx{Kind: chain.TxExec, Payload: marshal(t, validRecord(t, i, `{"value":2}`))}
		x.Nonce[0] = i
		res := f.Apply(&raft.Log{Index: uint64(i), Type: raft.LogCommand, Data: fsm.EncodeAppendBlock(1, [][]byte{x.Encode()})}).(*fsm.ApplyResult)
		if res.Err != nil || res.Txs[0].Err != nil {
			t.Fatalf("apply: %+v", res)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Records int   `json:"records"`
		Failed  []any `json:"failed"`
	}
	for _, c := range []struct {
		from string
		want int
	}{{"1", 2}, {"2", 1}, {"3", 0}} {
		r := cli(t, "audit", "elections", "--data", dir, "--from", c.from, "--json")
		if r.code != exitOK {
			t.Fatalf("audit elections --data --from %s: %+v", c.from, r)
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Records != c.want || len(rep.Failed) != 0 {
			t.Fatalf("--from %s: %+v %v", c.from, rep, err)
		}
	}
	if r := cli(t, "audit", "elections", "--data", dir, "--group", "1"); r.code != exitOK || !strings.HasPrefix(r.stdout, "0 execution records checked, 0 fail") {
		t.Fatalf("another group's store: %+v", r)
	}
}

// A record that fails its check (here: a response the executions did not
// produce, or bytes that are no record) is reported, and the audit fails.
func TestAuditElectionsReportsBadRecords(t *testing.T) {
	forged := validRecord(t, 1, `{"value":2}`)
	forged.Response = []byte(`{"value":999}`)
	var out bytes.Buffer
	a := &app{stdout: &out}
	err := a.reportElections([]committedRecord{
		{group: 0, height: 3, id: "aa", payload: marshal(t, validRecord(t, 2, `{"value":2}`))},
		{group: 0, height: 4, id: "bb", payload: marshal(t, forged)},
		{group: 1, height: 9, id: "cc", payload: []byte{execrecord.Version}},
	})
	if err == nil || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("audit of bad records: %v", err)
	}
	s := out.String()
	if !strings.HasPrefix(s, "3 execution records checked, 2 fail") || !strings.Contains(s, "height 4") || !strings.Contains(s, "outcome does not follow") ||
		!strings.Contains(s, "group 1 height 9") || strings.Contains(s, "height 3 ") {
		t.Fatalf("report:\n%s", s)
	}
}

// deployPayload is a deploy transaction's payload for function inc with
// the given unverified policy.
func deployPayload(t *testing.T, version string, p function.UnverifiedPolicy) []byte {
	t.Helper()
	code := []byte("\x00asm\x01\x00\x00\x00")
	spec := function.DefaultSpec("inc", version, code)
	spec.Unverified = p
	b, err := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The audit re-checks the unverified policy of the deployment in force
// at each record: a record accepted unverified (one candidate, agreed,
// not verified) after a deployment that refuses that is reported; the
// same record before that deployment, under one that accepts, is not.
func TestAuditElectionsUnverifiedPolicy(t *testing.T) {
	w := newRecordWalk(0, 1)
	w.tx(1, "d1", chain.TxDeploy, deployPayload(t, "1", function.UnverifiedAccept))
	w.tx(2, "e2", chain.TxExec, marshal(t, validRecord(t, 2, `{"value":2}`)))
	w.tx(3, "d3", chain.TxDeploy, deployPayload(t, "2", function.UnverifiedRefuse))
	w.tx(4, "e4", chain.TxExec, marshal(t, validRecord(t, 4, `{"value":2}`)))
	w.tx(5, "d5", chain.TxDeploy, []byte("not a deployment")) // indexes nothing: refuse stays
	w.tx(6, "e6", chain.TxExec, marshal(t, validRecord(t, 6, `{"value":2}`)))
	var out bytes.Buffer
	a := &app{stdout: &out}
	err := a.reportElections(w.records)
	if err == nil || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("audit: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "height 4") || !strings.Contains(s, "height 6") || strings.Contains(s, "height 2 ") || !strings.Contains(s, "refuses unverified results") {
		t.Fatalf("report:\n%s", s)
	}
	// --from skips records, never the deployments before them.
	w = newRecordWalk(0, 4)
	w.tx(3, "d3", chain.TxDeploy, deployPayload(t, "2", function.UnverifiedRefuse))
	w.tx(4, "e4", chain.TxExec, marshal(t, validRecord(t, 4, `{"value":2}`)))
	if len(w.records) != 1 || !w.records[0].refuses {
		t.Fatalf("records from height 4: %+v", w.records)
	}
}

// Offline, the policy in force is the one where the record stands: a
// record accepted unverified under an accepting deployment stays valid
// after a later deployment that refuses.
func TestAuditElectionsOfflinePolicyInForce(t *testing.T) {
	dir := t.TempDir()
	s, err := fsm.OpenStore(filepath.Join(dir, fsm.StoreFile), 0, fsm.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(s, nil)
	txs := []chain.Tx{
		{Kind: chain.TxDeploy, Payload: deployPayload(t, "1", function.UnverifiedAccept)},
		{Kind: chain.TxExec, Payload: marshal(t, validRecord(t, 1, `{"value":2}`))},
		{Kind: chain.TxDeploy, Payload: deployPayload(t, "2", function.UnverifiedRefuse)},
	}
	for i := range txs {
		txs[i].Nonce[0] = byte(i + 1)
		res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: fsm.EncodeAppendBlock(int64(i+1), [][]byte{txs[i].Encode()})}).(*fsm.ApplyResult)
		if res.Err != nil || res.Txs[0].Err != nil {
			t.Fatalf("apply %d: %+v", i, res)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "audit", "elections", "--data", dir)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "1 execution records checked, 0 fail") {
		t.Fatalf("audit of a record valid under the policy in force: %+v", r)
	}
}
