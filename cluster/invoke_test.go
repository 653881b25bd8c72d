package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/chain"
	"qledger/election"
	"qledger/examples/functions/tiny"
	"qledger/execrecord"
	"qledger/execute"
	"qledger/fsm"
	"qledger/function"
)

func deployTiny(t *testing.T, n *Node, group int, name string) function.Spec {
	t.Helper()
	code, ok := tiny.Module("tinyinc")
	if !ok {
		t.Fatal("no tinyinc module")
	}
	spec := function.DefaultSpec(name, "1", code)
	payload, err := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tx := chain.Tx{Kind: chain.TxDeploy, Group: uint32(group), IdempotencyKey: "deploy " + name, Payload: payload}
	if _, err := whileLeaderless(t, func() (Receipt, error) { return n.Submit(context.Background(), tx) }); err != nil {
		t.Fatal(err)
	}
	return spec
}

func invokeReq(t *testing.T, group int, fn, input string) InvokeRequest {
	var req InvokeRequest
	rand.Read(req.RequestID[:])
	key, err := election.DeriveKey([]byte("test session key, 32 bytes long."), req.RequestID[:])
	if err != nil {
		t.Fatal(err)
	}
	req.Group, req.Function, req.Input, req.ElectionKey, req.KeyID = group, fn, []byte(input), key, "test-key"
	return req
}

// TestInvokeVerifiedExecution: any node accepts an invocation; each runs
// on two agreeing executors picked by a verifiable election among the
// group's members, executor included, and its record is committed.
//
// On a loaded machine a member may answer an election phase late and be
// left out of that election (as designed), and a group may be without a
// leader for longer than a node waits for one (ErrNoLeader, which a
// client retries): so each election must have at least an executor and a
// verifier from the group, every member must take part in some election,
// and calls are retried as a client retries them (an invocation keeps its
// request ID, so it runs once).
func TestInvokeVerifiedExecution(t *testing.T) {
	l := startLocal(t, 1, 3)
	ex, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "executor added", time.Minute, func() bool { _, nv := config(t, l, 0); return nv == 1 })
	deployTiny(t, l.Nodes[0], 0, "inc")
	ctx := context.Background()
	members := map[string]bool{ex.info.ID: true}
	for _, n := range l.Nodes {
		members[n.info.ID] = true
	}
	seen, took := map[string]bool{}, map[string]bool{}
	for i := 0; i < 12; i++ {
		// Any node, the executor included, accepts the invocation.
		via := l.Nodes[i%len(l.Nodes)]
		req := invokeReq(t, 0, "inc", `{"value":100}`)
		res, err := whileLeaderless(t, func() (InvokeResult, error) { return via.Invoke(ctx, req) })
		if err != nil {
			t.Fatal(err)
		}
		r := res.Record
		if string(r.Response) != `{"value":101}` || !r.Agreed || !r.Verified || r.Outcome != function.OutcomeOK {
			t.Fatalf("record %+v", r)
		}
		if err := election.Verify(r.Election); err != nil {
			t.Fatalf("election record does not verify: %v", err)
		}
		if len(r.Election.Candidates) < 2 || r.Executor == r.Verifier {
			t.Fatalf("election: %d candidates, executor %s verifier %s", len(r.Election.Candidates), r.Executor, r.Verifier)
		}
		for _, c := range r.Election.Candidates {
			if !members[c.NodeID] {
				t.Fatalf("candidate %s is no member of the group", c.NodeID)
			}
			took[c.NodeID] = true
		}
		seen[r.Executor] = true
		// The record is on the chain, as an exec transaction.
		rec, err := whileLeaderless(t, func() (fsm.TxRecord, error) {
			rec, _, err := via.Tx(ctx, res.Receipt.ID, 0, Linearizable)
			return rec, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if tx, _ := chain.DecodeTx(rec.TxBytes); tx.Kind != chain.TxExec {
			t.Fatalf("committed as %v", tx.Kind)
		}
	}
	if len(took) != len(members) {
		t.Fatalf("%d of the group's %d members took part in the elections: %v", len(took), len(members), took)
	}
	if len(seen) < 2 {
		t.Fatalf("the election always picked the same executor: %v", seen)
	}
}

// whileLeaderless calls f until it does not fail with an error a client
// retries (retryable: no leader, leadership lost, outcome unknown), for up
// to a minute: on a loaded machine an election can outlast the time a node
// waits for a leader before it answers ErrNoLeader, and leaders step down.
// f must be safe to repeat (an invocation with the same request ID, a
// write with the same idempotency key, a read).
func whileLeaderless[T any](t *testing.T, f func() (T, error)) (T, error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := f()
		if err == nil || !retryable(err) || time.Now().After(deadline) {
			return v, err
		}
		t.Logf("trying again after: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInvokeByzantineAndKilledWinner(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Groups: 1, Replicas: 3, DataDir: t.TempDir(), Base: &base, Logger: debugLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A Byzantine executor node that returns a forged response.
	liar, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	liar.SetExecHook(func(r execute.Result) execute.Result {
		r.Stdout = []byte(`{"value":999}`)
		r.Hash = function.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
		return r
	})
	waitUntil(t, "liar added", 10*time.Second, func() bool { _, nv := config(t, l, 0); return nv == 1 })
	deployTiny(t, l.Nodes[0], 0, "inc")
	ldr := waitLeader(t, l)
	liarInvolved := 0
	for i := 0; i < 20; i++ {
		res, err := ldr.Invoke(context.Background(), invokeReq(t, 0, "inc", `{"value":1}`))
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
		r := res.Record
		if string(r.Response) != `{"value":2}` {
			t.Fatalf("a forged response was committed: %s (%s)", r.Response, r.Conflict)
		}
		if r.Executor == liar.info.ID || r.Verifier == liar.info.ID {
			liarInvolved++
			if r.TieBreaker == "" || r.Conflict == "" {
				t.Fatalf("disagreement without a tie-breaker or conflict details: %+v", r)
			}
		}
	}
	if liarInvolved == 0 {
		t.Fatal("the Byzantine node never took part in 20 elections")
	}
	// A second executor joins: 3 voters + 2 executors.
	if _, err := l.AddNode(RoleExecutor, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "second executor added", 10*time.Second, func() bool { _, nv := config(t, l, 0); return nv == 2 })
	liar.SetExecHook(nil)

	// A node dies in the middle of executing: every execution takes 300 ms
	// and reports that it started; the first non-leader to start is killed.
	started := make(chan *Node, 16)
	for _, n := range l.Nodes {
		n := n
		n.SetExecHook(func(r execute.Result) execute.Result {
			started <- n
			time.Sleep(300 * time.Millisecond)
			return r
		})
	}
	ldr, _ = l.Leader(0)
	done := make(chan error, 1)
	var res InvokeResult
	go func() {
		var err error
		res, err = ldr.Invoke(context.Background(), invokeReq(t, 0, "inc", `{"value":41}`))
		done <- err
	}()
	var killed *Node
	for killed == nil {
		n := <-started
		if n != ldr {
			killed = n
			n.Close()
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("invocation with a member killed mid-execution: %v", err)
	}
	r := res.Record
	if string(r.Response) != `{"value":42}` || !r.Verified {
		t.Fatalf("after the kill: %+v", r)
	}
	if r.Executor == killed.info.ID || r.Verifier == killed.info.ID {
		if r.TieBreaker == "" {
			t.Fatalf("the killed %s was executor or verifier, but no tie-breaker ran: %+v", killed.ID().Short(), r)
		}
	}
}

func debugLogger() hclog.Logger {
	if os.Getenv("QLEDGER_TEST_LOG") == "" {
		return nil
	}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("QLEDGER_TEST_LOG")), Output: os.Stderr})
}

// TestInvokeIdempotentPerRequestID: a retry with the same request ID, from
// any node and after a leader change, gets the committed record back and
// nothing runs again; the same ID for another function is refused.
func TestInvokeIdempotentPerRequestID(t *testing.T) {
	l := startLocal(t, 1, 3)
	deployTiny(t, l.Nodes[0], 0, "inc")
	deployTiny(t, l.Nodes[0], 0, "other")
	runs := 0
	var mu sync.Mutex
	for _, n := range l.Nodes {
		n.SetExecHook(func(r execute.Result) execute.Result { mu.Lock(); runs++; mu.Unlock(); return r })
	}
	ctx := context.Background()
	req := invokeReq(t, 0, "inc", `{"value":1}`)
	first, err := l.Nodes[1].Invoke(ctx, req)
	if err != nil || first.Receipt.Duplicate {
		t.Fatalf("first: %+v %v", first.Receipt, err)
	}
	mu.Lock()
	ran := runs
	mu.Unlock()
	ld := waitLeader(t, l)
	ld.Close()
	waitUntil(t, "a new leader", 20*time.Second, func() bool { nl, ok := l.Leader(0); return ok && nl != ld })
	for _, n := range l.Nodes {
		if n == ld {
			continue
		}
		again, err := n.Invoke(ctx, req)
		if err != nil || !again.Receipt.Duplicate || again.Receipt.ID != first.Receipt.ID || again.Record.ResultHash != first.Record.ResultHash {
			t.Fatalf("retry through %s: %+v %v (first %+v)", n.ID().Short(), again.Receipt, err, first.Receipt)
		}
	}
	mu.Lock()
	if runs != ran {
		t.Fatalf("a retry executed the function again: %d runs, %d before", runs, ran)
	}
	mu.Unlock()
	other := req
	other.Function = "other"
	nl := waitLeader(t, l)
	if _, err := nl.Invoke(ctx, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("the same request ID for another function: %v", err)
	}
}

// TestInvokeAnswersVersion1Record: a chain written before the binary
// execution record holds JSON (version 1) records; a retry of such a
// request is answered from that record, and nothing runs again. New
// records are written in the binary encoding.
func TestInvokeAnswersVersion1Record(t *testing.T) {
	l := startLocal(t, 1, 1)
	deployTiny(t, l.Nodes[0], 0, "inc")
	var ran atomic.Bool
	l.Nodes[0].SetExecHook(func(r execute.Result) execute.Result { ran.Store(true); return r })
	ctx := context.Background()
	req := invokeReq(t, 0, "inc", `{"value":1}`)
	// A valid record (Apply checks every record): "old-node" alone was
	// elected and ran.
	el, err := election.Elect(req.ElectionKey, req.KeyID, req.RequestID[:], []election.Reveal{{NodeID: "old-node", Nonce: [election.Size]byte{7}}})
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(`{"value":2}`)
	h := function.ResultHash(function.OutcomeOK, 0, out)
	old := execrecord.Record{Version: execrecord.VersionJSON, RequestID: req.RequestID, Function: "inc", FnVersion: "1",
		Input: req.Input, InputHash: sha256.Sum256(req.Input), Election: el, Executor: "old-node", Agreed: true, Verified: false,
		ResultHash: h, Outcome: function.OutcomeOK, Response: out,
		Executions: []execrecord.Execution{{NodeID: "old-node", Outcome: function.OutcomeOK, Stdout: out, Hash: h}}}
	legacy, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Nodes[0].Submit(ctx, chain.Tx{Kind: chain.TxExec, Group: 0, IdempotencyKey: InvokeKey(req.RequestID), Payload: legacy}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Nodes[0].Invoke(ctx, req)
	if err != nil || !res.Receipt.Duplicate || res.Record.Version != execrecord.VersionJSON || string(res.Record.Response) != `{"value":2}` || res.Record.Executor != "old-node" {
		t.Fatalf("retry of a version 1 record: %+v %v", res, err)
	}
	if ran.Load() {
		t.Fatal("the function ran again")
	}
	fresh, err := l.Nodes[0].Invoke(ctx, invokeReq(t, 0, "inc", `{"value":5}`))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := l.Nodes[0].Tx(ctx, fresh.Receipt.ID, 0, Linearizable)
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := chain.DecodeTx(rec.TxBytes)
	var back execrecord.Record
	if err := back.UnmarshalBinary(tx.Payload); err != nil || string(back.Response) != `{"value":6}` {
		t.Fatalf("a new record is not binary: %v", err)
	}
}

// deployPolicy deploys tinyinc as name with the given unverified policy.
func deployPolicy(t *testing.T, n *Node, name string, p function.UnverifiedPolicy) {
	t.Helper()
	code, _ := tiny.Module("tinyinc")
	spec := function.DefaultSpec(name, "1", code)
	spec.Unverified = p
	payload, err := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Submit(context.Background(), chain.Tx{Kind: chain.TxDeploy, Group: 0, Payload: payload}); err != nil {
		t.Fatal(err)
	}
}

// TestInvokeWithoutVerifier: a group of two (one voter, one executor)
// whose non-leader's run fails. A function that accepts unverified
// results gets the surviving result, recorded agreed but not verified
// with the failure as its conflict; one that refuses gets a recorded
// no-agreement. An executor that dies while it runs is left out of the
// election. With the leader alone left, the accepting function still
// runs (unverified) and the refusing one fails before anything runs,
// recording nothing.
func TestInvokeWithoutVerifier(t *testing.T) {
	l := startLocal(t, 1, 1)
	ldr := l.Nodes[0]
	deployPolicy(t, ldr, "acc", function.UnverifiedAccept)
	deployPolicy(t, ldr, "ref", function.UnverifiedRefuse)
	ctx := context.Background()
	ex, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the executor a live candidate", 30*time.Second, func() bool {
		c, _ := ldr.candidates()
		return len(c) == 2 && (c[0].ID == ex.info.ID || c[1].ID == ex.info.ID)
	})
	// The executor answers every run with a result whose hash is not
	// that of its output: it took part, and its run failed.
	ex.SetExecHook(func(r execute.Result) execute.Result {
		r.Hash[0] ^= 1
		return r
	})
	failing := func(fn string) (InvokeResult, error) {
		t.Helper()
		res, err := ldr.Invoke(ctx, invokeReq(t, 0, fn, `{"value":1}`))
		if len(res.Record.Election.Candidates) != 2 || len(res.Record.Executions) != 2 {
			t.Fatalf("%s: not an election of two with two executions: %+v", fn, res.Record)
		}
		return res, err
	}
	res, err := failing("acc")
	r := res.Record
	if err != nil || !r.Agreed || r.Verified || string(r.Response) != `{"value":2}` || r.Conflict == "" || res.Receipt.Height == 0 {
		t.Fatalf("accept: %v %+v", err, r)
	}
	if err := execrecord.Check(r); err != nil {
		t.Fatal(err)
	}
	res, err = failing("ref")
	if !errors.Is(err, ErrNoAgreement) || res.Record.Agreed || res.Receipt.Height == 0 {
		t.Fatalf("refuse: %v %+v", err, res.Record)
	}

	// An executor that dies while it runs never hands over its nonce
	// (reveal and run are one exchange), so it is left out of the
	// election: the leader's own run stands alone.
	started := make(chan struct{}, 1)
	ex.SetExecHook(func(r execute.Result) execute.Result {
		started <- struct{}{}
		time.Sleep(2 * time.Second)
		return r
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = ldr.Invoke(ctx, invokeReq(t, 0, "acc", `{"value":3}`))
	}()
	<-started
	ex.Close()
	<-done
	r = res.Record
	if err != nil || len(r.Election.Candidates) != 1 || r.Executor != ldr.info.ID || !r.Agreed || r.Verified || string(r.Response) != `{"value":4}` {
		t.Fatalf("accept, the executor died while running: %v %+v", err, r)
	}
	waitUntil(t, "the leader alone is a candidate", 30*time.Second, func() bool { c, _ := ldr.candidates(); return len(c) == 1 })
	res, err = ldr.Invoke(ctx, invokeReq(t, 0, "acc", `{"value":5}`))
	if err != nil || !res.Record.Agreed || res.Record.Verified || string(res.Record.Response) != `{"value":6}` {
		t.Fatalf("accept, alone: %v %+v", err, res.Record)
	}
	h, _, _ := ldr.store.Head()
	req := invokeReq(t, 0, "ref", `{"value":5}`)
	if _, err := ldr.Invoke(ctx, req); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("refuse, alone: %v", err)
	}
	if _, ok, _ := ldr.recordedInvocation(req); ok {
		t.Fatal("a refused call was recorded")
	}
	if h2, _, _ := ldr.store.Head(); h2.Height != h.Height {
		t.Fatalf("a refused call appended a block: height %d -> %d", h.Height, h2.Height)
	}
}

// A function redeployed under its name with other code runs the new code
// on every node that executes it, although each compiled the old code
// already: executors compile by the code hash of the latest deployment
// (ensureCompiled), and the records name that hash and pass
// execrecord.Check on every replica (else they would not commit).
func TestInvokeAfterRedeployRunsNewCode(t *testing.T) {
	l := startLocal(t, 1, 3)
	deployTiny(t, l.Nodes[0], 0, "fn")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		res, err := l.Nodes[i].Invoke(ctx, invokeReq(t, 0, "fn", `{"value":1}`))
		if err != nil || string(res.Record.Response) != `{"value":2}` {
			t.Fatalf("version 1: %v %q", err, res.Record.Response)
		}
	}
	code, ok := tiny.Module("echo")
	if !ok {
		t.Fatal("no echo module")
	}
	spec := function.DefaultSpec("fn", "2", code)
	payload, err := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Nodes[0].Submit(ctx, chain.Tx{Kind: chain.TxDeploy, Group: 0, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		res, err := l.Nodes[i%3].Invoke(ctx, invokeReq(t, 0, "fn", `{"value":1}`))
		if err != nil {
			t.Fatal(err)
		}
		r := res.Record
		if r.CodeHash != spec.CodeHash || r.FnVersion != "2" || !r.Verified || string(r.Response) == `{"value":2}` {
			t.Fatalf("after the redeployment: code %x (want %x), version %s, verified %v, response %q", r.CodeHash[:6], spec.CodeHash[:6], r.FnVersion, r.Verified, r.Response)
		}
		for _, x := range r.Executions {
			if x.Err != "" {
				t.Fatalf("execution on %s failed: %s", x.NodeID, x.Err)
			}
		}
	}
}

// TestInvokeAbandonedByCallerRecordsNothing: a caller that gives up while
// the executions run (its context ends, as when a client times out and
// the forwarding node's call is cancelled) must not leave a record of a
// disagreement that only the cancellation caused; a retry with the same
// request ID runs and records an agreed result. Found by `make torture`
// (seed 1796646606548404422): a request recorded as "executions disagree
// ... invocation canceled: context canceled" for a deterministic function.
func TestInvokeAbandonedByCallerRecordsNothing(t *testing.T) {
	l := startLocal(t, 1, 3)
	deployTiny(t, l.Nodes[0], 0, "inc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first atomic.Bool
	for _, n := range l.Nodes {
		// The first execution to finish cancels the caller's context; every
		// other one finishes only after that, so the leader sees at most
		// one result and the rest fail with the cancelled context.
		n.SetExecHook(func(r execute.Result) execute.Result {
			if first.CompareAndSwap(false, true) {
				cancel()
			} else {
				<-ctx.Done()
			}
			return r
		})
	}
	req := invokeReq(t, 0, "inc", `{"value":1}`)
	ld, ok := l.Leader(0)
	if !ok {
		t.Fatal("no leader")
	}
	if res, err := ld.Invoke(ctx, req); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned invocation: %+v, %v; want context.Canceled and nothing recorded", res.Record, err)
	}
	for _, n := range l.Nodes {
		n.SetExecHook(nil)
	}
	again, err := ld.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("retry after the caller gave up: %v", err)
	}
	if again.Receipt.Duplicate || !again.Record.Agreed || string(again.Record.Response) != `{"value":2}` {
		t.Fatalf("retry: receipt %+v, record %+v; want a new agreed record", again.Receipt, again.Record)
	}
}

// After its first elections the leader holds pledges from the other
// members and elects without asking them to commit; a member that no
// longer holds a pledge the leader uses (as after a restart) is left out
// of that election, and the leader asks it to commit again the next time.
func TestInvokeWithPledges(t *testing.T) {
	l := startLocal(t, 1, 3)
	deployTiny(t, waitLeader(t, l), 0, "inc")
	ctx := context.Background()
	invoke := func(ldr *Node) execrecord.Record {
		t.Helper()
		res, err := ldr.Invoke(ctx, invokeReq(t, 0, "inc", `{"value":1}`))
		if err != nil || !res.Record.Verified {
			t.Fatalf("invoke: %v %+v", err, res.Record)
		}
		return res.Record
	}
	// attempt runs the scenario on the current leader; false if the
	// leadership moved meanwhile (the pledges stay with the old leader).
	attempt := func() bool {
		ldr := waitLeader(t, l)
		for range 3 {
			invoke(ldr)
		}
		var other string
		for _, n := range l.Nodes {
			if n != ldr {
				other = n.info.ID
				break
			}
		}
		if !ldr.IsLeader() {
			return false
		}
		if ldr.pledges.Len(other) == 0 {
			t.Fatalf("the leader holds no pledge of %.12s after three elections", other)
		}
		ldr.pledges.Forget(other)
		ldr.pledges.Add(other, [election.Size]byte{1, 2, 3})
		stale := invoke(ldr)
		again := invoke(ldr)
		if !ldr.IsLeader() {
			return false
		}
		if len(stale.Election.Candidates) != 2 || slices.ContainsFunc(stale.Election.Candidates, func(c election.Candidate) bool { return c.NodeID == other }) {
			t.Fatalf("a member revealing no pledge took part: %+v", stale.Election.Candidates)
		}
		if len(again.Election.Candidates) != 3 {
			t.Fatalf("the member left out once is not back: %+v", again.Election.Candidates)
		}
		return true
	}
	for i := 0; !attempt(); i++ {
		if i == 4 {
			t.Fatal("the leadership moved during each of five attempts")
		}
	}
}

// TestInvokeAbandonedLeavesNoUnverifiedRecord: in a group of two (a
// voter and an executor) with a function that accepts unverified
// results, the caller gives up once the leader's own run is done, while
// the executor still runs: the executor's reveal-and-run is cut off, so
// it is left out of the election, and the leader's result alone would be
// recorded as agreed but unverified. Nothing may be recorded; a retry
// runs it again with both.
func TestInvokeAbandonedLeavesNoUnverifiedRecord(t *testing.T) {
	l := startLocal(t, 1, 1)
	ldr := l.Nodes[0]
	deployPolicy(t, ldr, "acc", function.UnverifiedAccept)
	ex, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the executor a live candidate", 30*time.Second, func() bool {
		c, _ := ldr.candidates()
		return len(c) == 2
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The executor's run ends only once the abandoned invocation has
	// returned, so its answer never reaches the leader in time.
	release := make(chan struct{})
	ldr.SetExecHook(func(r execute.Result) execute.Result { cancel(); return r })
	ex.SetExecHook(func(r execute.Result) execute.Result { <-release; return r })
	req := invokeReq(t, 0, "acc", `{"value":1}`)
	res, err := ldr.Invoke(ctx, req)
	close(release)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned invocation: %+v, %v; want context.Canceled and nothing recorded", res.Record, err)
	}
	ldr.SetExecHook(nil)
	ex.SetExecHook(nil)
	again, err := ldr.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("retry after the caller gave up: %v", err)
	}
	if again.Receipt.Duplicate || !again.Record.Verified {
		t.Fatalf("retry: receipt %+v, record %+v; want a new verified record", again.Receipt, again.Record)
	}
}
