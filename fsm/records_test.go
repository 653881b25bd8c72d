package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"qledger/chain"
	"qledger/election"
	"qledger/execrecord"
	"qledger/function"
)

// goodRecord is an honest record: three candidates, the executor and the
// verifier agree.
func goodRecord(t *testing.T, seq int) execrecord.Record {
	t.Helper()
	rid := sha256.Sum256([]byte(fmt.Sprint("request ", seq)))
	key, err := election.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), rid[:])
	if err != nil {
		t.Fatal(err)
	}
	var reveals []election.Reveal
	for i := range 3 {
		var n [election.Size]byte
		n[0], n[1] = byte(i+1), byte(seq)
		reveals = append(reveals, election.Reveal{NodeID: fmt.Sprintf("node-%d", i), Nonce: n})
	}
	el, err := election.Elect(key, "key-1", rid[:], reveals)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(`{"value":2}`)
	h := function.ResultHash(function.OutcomeOK, 0, out)
	in := []byte(`{"value":1}`)
	return execrecord.Record{Version: execrecord.Version, RequestID: rid, Function: "inc", FnVersion: "1", InputHash: sha256.Sum256(in), Input: in,
		Election: el, Executor: el.Executor(), Verifier: el.Verifier(),
		Executions: []execrecord.Execution{
			{NodeID: el.Executor(), Outcome: function.OutcomeOK, Stdout: out, Hash: h},
			{NodeID: el.Verifier(), Outcome: function.OutcomeOK, Stdout: out, Hash: h},
		},
		Agreed: true, Verified: true, ResultHash: h, Outcome: function.OutcomeOK, Response: out}
}

func execTx(t *testing.T, group uint32, payload []byte, nonce byte) []byte {
	t.Helper()
	x := chain.Tx{Kind: chain.TxExec, Group: group, IdempotencyKey: fmt.Sprintf("invoke/%d", nonce), Payload: payload}
	x.Nonce[0] = nonce
	return x.Encode()
}

func encodeRecord(t *testing.T, r execrecord.Record) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every replica rejects each kind of bad execution record at Apply time
// with the same error, appends nothing for it, and still appends the
// valid records of the same command: the replicas' heads stay equal.
func TestApplyRejectsBadRecordsOnEveryReplica(t *testing.T) {
	bad := []struct {
		name   string
		tamper func(r *execrecord.Record)
		want   error
	}{
		{"nonce does not hash to h", func(r *execrecord.Record) { r.Election.Candidates[0].Nonce[0] ^= 1 }, election.ErrNonceMismatch},
		{"stakes under two keys", func(r *execrecord.Record) { r.Election.Candidates[1].Stake[0] ^= 1 }, election.ErrStakeMismatch},
		{"commitment to another key", func(r *execrecord.Record) { r.Election.KeyCommitment[3] ^= 1 }, election.ErrCommitmentMismatch},
		{"executor not the highest stake", func(r *execrecord.Record) { r.Executor, r.Verifier = r.Verifier, r.Executor }, execrecord.ErrRoles},
		{"verifier not the runner-up", func(r *execrecord.Record) { r.Verifier = r.Election.TieBreaker() }, execrecord.ErrRoles},
		{"execution hash not of its result", func(r *execrecord.Record) { r.Executions[1].Stdout = []byte("x") }, execrecord.ErrExecutions},
		{"disagreement without the tie-breaker", func(r *execrecord.Record) {
			r.Executions[1].Stdout = []byte("x")
			r.Executions[1].Hash = function.ResultHash(function.OutcomeOK, 0, r.Executions[1].Stdout)
		}, execrecord.ErrExecutions},
		{"verified executions recorded unverified", func(r *execrecord.Record) { r.Verified = false }, execrecord.ErrOutcome},
		{"response not the agreed result", func(r *execrecord.Record) { r.Response = []byte(`{"value":999}`) }, execrecord.ErrOutcome},
	}
	replicas := []*FSM{newFSM(t, 1), newFSM(t, 1), newFSM(t, 1)}
	for i, c := range bad {
		r := goodRecord(t, i)
		c.tamper(&r)
		good := encodeRecord(t, goodRecord(t, 100+i))
		cmd := EncodeAppendBlock(int64(i), [][]byte{execTx(t, 1, encodeRecord(t, r), byte(2*i)), execTx(t, 1, good, byte(2*i+1))})
		var first *ApplyResult
		for k, f := range replicas {
			res := apply(f, uint64(i+1), cmd)
			if res.Err != nil || len(res.Txs) != 2 {
				t.Fatalf("%s: replica %d: %+v", c.name, k, res)
			}
			if err := res.Txs[0].Err; !errors.Is(err, ErrInvalidRecord) || !errors.Is(err, c.want) {
				t.Fatalf("%s: replica %d: %v, want %v", c.name, k, err, c.want)
			}
			if res.Txs[1].Err != nil || res.Block == nil || res.Block.TxCount != 1 {
				t.Fatalf("%s: replica %d: the valid record was not appended alone: %+v", c.name, k, res)
			}
			if first == nil {
				first = res
			} else if *res.Block != *first.Block || res.Txs[0].Err.Error() != first.Txs[0].Err.Error() {
				t.Fatalf("%s: replica %d diverges: %+v vs %+v", c.name, k, res.Block, first.Block)
			}
			if _, err := f.Store().Tx(res.Txs[0].ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: the rejected record is stored: %v", c.name, err)
			}
		}
	}
	// Bytes that do not decode as a record are rejected the same way.
	res := apply(replicas[0], uint64(len(bad)+1), EncodeAppendBlock(0, [][]byte{execTx(t, 1, []byte{execrecord.Version, 1}, 200)}))
	if res.Block != nil || !errors.Is(res.Txs[0].Err, ErrInvalidRecord) || !errors.Is(res.Txs[0].Err, execrecord.ErrTruncated) {
		t.Fatalf("undecodable record: %+v", res)
	}
}

// A record that accepts a result without a verifier (agreed, not
// verified) is appended for a function whose policy accepts that, and
// rejected on every replica for one that refuses it, as the replica's
// store holds the policy.
func TestApplyEnforcesUnverifiedPolicy(t *testing.T) {
	deploy := func(name string, p function.UnverifiedPolicy, nonce byte) []byte {
		code := []byte("module " + name)
		spec := function.DefaultSpec(name, "1", code)
		spec.Unverified = p
		payload, err := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		x := chain.Tx{Kind: chain.TxDeploy, Group: 1, Payload: payload}
		x.Nonce[0] = nonce
		return x.Encode()
	}
	// The executor alone: the verifier could not run.
	alone := func(fn string, seq int) []byte {
		r := goodRecord(t, seq)
		r.Function = fn
		r.TieBreaker = r.Election.TieBreaker()
		r.Executions[1] = execrecord.Execution{NodeID: r.Verifier, Err: "unreachable"}
		r.Executions = append(r.Executions, execrecord.Execution{NodeID: r.TieBreaker, Err: "unreachable"})
		r.Verified, r.Conflict = false, "verifier and tie-breaker failed"
		return encodeRecord(t, r)
	}
	replicas := []*FSM{newFSM(t, 1), newFSM(t, 1)}
	for _, f := range replicas {
		if res := apply(f, 1, EncodeAppendBlock(1, [][]byte{deploy("acc", function.UnverifiedAccept, 1), deploy("ref", function.UnverifiedRefuse, 2)})); res.Err != nil || res.Block == nil {
			t.Fatalf("deploy: %+v", res)
		}
		res := apply(f, 2, EncodeAppendBlock(2, [][]byte{execTx(t, 1, alone("acc", 1), 10), execTx(t, 1, alone("ref", 2), 11), execTx(t, 1, alone("unknown", 3), 12)}))
		if res.Txs[0].Err != nil || res.Txs[2].Err != nil {
			t.Fatalf("accepting policy (or no deployment): %v %v", res.Txs[0].Err, res.Txs[2].Err)
		}
		if err := res.Txs[1].Err; !errors.Is(err, ErrInvalidRecord) || !errors.Is(err, ErrUnverifiedRefused) {
			t.Fatalf("refusing policy: %v", err)
		}
		if res.Block == nil || res.Block.TxCount != 2 {
			t.Fatalf("block: %+v", res.Block)
		}
	}
	h0, _, _ := replicas[0].Store().Head()
	h1, _, _ := replicas[1].Store().Head()
	if h0 != h1 {
		t.Fatal("replicas diverge")
	}
}

// FunctionMeta answers what Function does without the code: the latest
// deployment's spec, transaction and height, and ErrNotFound for a name
// never deployed. It is cached, so each read follows a redeployment and
// a Restore at once.
func TestFunctionMetaMatchesFunction(t *testing.T) {
	f := newFSM(t, 1)
	var atV1 sink // a snapshot taken right after version 1
	deploy := func(version string, nonce byte) []byte {
		code := []byte("module v" + version)
		payload, err := function.Deployment{Spec: function.DefaultSpec("fn", version, code), Code: code}.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		x := chain.Tx{Kind: chain.TxDeploy, Group: 1, Payload: payload}
		x.Nonce[0] = nonce
		return x.Encode()
	}
	if _, err := f.Store().FunctionMeta("fn"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any deployment: %v", err)
	}
	for i, v := range []string{"1", "2"} {
		if res := apply(f, uint64(i+1), EncodeAppendBlock(int64(i+1), [][]byte{deploy(v, byte(i+1))})); res.Err != nil || res.Block == nil {
			t.Fatalf("deploy %s: %+v", v, res)
		}
		meta, err := f.Store().FunctionMeta("fn")
		if err != nil {
			t.Fatal(err)
		}
		full, code, err := f.Store().Function("fn")
		if err != nil {
			t.Fatal(err)
		}
		if meta.Spec.Version != v || meta.Spec.CodeHash != full.Spec.CodeHash || meta.TxID != full.TxID || meta.Height != full.Height || string(code) != "module v"+v {
			t.Fatalf("version %s: meta %+v, full %+v, code %q", v, meta, full, code)
		}
		if v == "1" {
			snap, err := f.FullSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := snap.Persist(&atV1); err != nil {
				t.Fatal(err)
			}
			snap.Release()
		}
	}
	if _, err := f.Store().FunctionMeta("other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	// Back to the snapshot: version 1 again, not the cached version 2.
	if err := f.Restore(io.NopCloser(bytes.NewReader(atV1.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if meta, err := f.Store().FunctionMeta("fn"); err != nil || meta.Spec.Version != "1" {
		t.Fatalf("after restoring the snapshot of version 1: %+v, %v", meta.Spec, err)
	}
}

// A reader that sees a redeployment's block reads that deployment's
// meta, never the one it replaced, while another goroutine commits one
// redeployment after another and the cache stays warm between them.
func TestFunctionMetaFollowsTheHead(t *testing.T) {
	f := newFSM(t, 1)
	deploy := func(i int) []byte {
		code := []byte(fmt.Sprint("module v", i))
		payload, err := function.Deployment{Spec: function.DefaultSpec("fn", fmt.Sprint(i), code), Code: code}.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		x := chain.Tx{Kind: chain.TxDeploy, Group: 1, Payload: payload}
		binary.BigEndian.PutUint32(x.Nonce[:], uint32(i))
		return x.Encode()
	}
	const rounds = 400
	if res := apply(f, 1, EncodeAppendBlock(1, [][]byte{deploy(1)})); res.Err != nil {
		t.Fatal(res.Err)
	}
	done := make(chan struct{})
	problem := make(chan string, 1)
	go func() {
		defer close(problem)
		for {
			select {
			case <-done:
				return
			default:
			}
			// Every block is a deployment: the one at the head's height
			// is the latest the reader can see.
			h, _, err := f.Store().Head()
			if err != nil {
				problem <- err.Error()
				return
			}
			m, err := f.Store().FunctionMeta("fn")
			if err != nil || m.Height < h.Height {
				problem <- fmt.Sprintf("head at height %d, meta of the deployment at height %d (%v)", h.Height, m.Height, err)
				return
			}
		}
	}()
	for i := 2; i <= rounds; i++ {
		if res := apply(f, uint64(i), EncodeAppendBlock(int64(i), [][]byte{deploy(i)})); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	close(done)
	if p, ok := <-problem; ok {
		t.Fatal(p)
	}
}
