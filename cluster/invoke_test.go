package cluster

import (
	"context"
	"os"

	"crypto/rand"
	"github.com/hashicorp/go-hclog"
	"testing"
	"time"

	"qledger/chain"
	"qledger/election"
	"qledger/examples/functions/tiny"
	"qledger/execute"
)

func deployTiny(t *testing.T, n *Node, group int, name string) execute.Spec {
	t.Helper()
	code, ok := tiny.Module("tinyinc")
	if !ok {
		t.Fatal("no tinyinc module")
	}
	spec := execute.DefaultSpec(name, "1", code)
	payload, err := execute.Deployment{Spec: spec, Code: code}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Submit(context.Background(), chain.Tx{Kind: chain.TxDeploy, Group: uint32(group), Payload: payload}); err != nil {
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

func TestInvokeVerifiedExecution(t *testing.T) {
	l := startLocal(t, 1, 3)
	ex, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "executor added", 10*time.Second, func() bool { _, nv := config(t, l, 0); return nv == 1 })
	deployTiny(t, l.Nodes[0], 0, "inc")
	ctx := context.Background()
	seen := map[string]bool{}
	for i := 0; i < 12; i++ {
		// Any node, the executor included, accepts the invocation.
		via := l.Nodes[i%len(l.Nodes)]
		res, err := via.Invoke(ctx, invokeReq(t, 0, "inc", `{"value":100}`))
		if err != nil {
			t.Fatal(err)
		}
		r := res.Record
		if string(r.Response) != `{"value":101}` || !r.Agreed || !r.Verified || r.Outcome != execute.OutcomeOK {
			t.Fatalf("record %+v", r)
		}
		if err := election.Verify(r.Election); err != nil {
			t.Fatalf("election record does not verify: %v", err)
		}
		if len(r.Election.Candidates) != 4 || r.Executor == r.Verifier {
			t.Fatalf("election: %d candidates, executor %s verifier %s", len(r.Election.Candidates), r.Executor, r.Verifier)
		}
		seen[r.Executor] = true
		// The record is on the chain, as an exec transaction.
		rec, _, err := via.Tx(ctx, res.Receipt.ID, 0, Linearizable)
		if err != nil {
			t.Fatal(err)
		}
		if tx, _ := chain.DecodeTx(rec.TxBytes); tx.Kind != chain.TxExec {
			t.Fatalf("committed as %v", tx.Kind)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("the election always picked the same executor: %v", seen)
	}
	_ = ex
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
		r.Hash = execute.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
		return r
	})
	waitUntil(t, "liar added", 10*time.Second, func() bool { _, nv := config(t, l, 0); return nv == 1 })
	deployTiny(t, l.Nodes[0], 0, "inc")
	ldr, _ := l.Leader(0)
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
	// The winner dies: an invocation still completes through the others.
	liar.SetExecHook(nil)
	for i := 0; i < 10; i++ {
		req := invokeReq(t, 0, "inc", `{"value":41}`)
		// Find who would win by trying: kill a non-leader voter first.
		var victim *Node
		for _, n := range l.Nodes[:3] {
			if !n.IsLeader() {
				victim = n
				break
			}
		}
		victim.Close()
		res, err := ldr.Invoke(context.Background(), req)
		if err != nil {
			t.Fatalf("with a dead member: %v", err)
		}
		if string(res.Record.Response) != `{"value":42}` {
			t.Fatalf("response %s", res.Record.Response)
		}
		break
	}
}

func debugLogger() hclog.Logger {
	if os.Getenv("QLEDGER_TEST_LOG") == "" {
		return nil
	}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("QLEDGER_TEST_LOG")), Output: os.Stderr})
}
