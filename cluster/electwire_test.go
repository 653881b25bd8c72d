package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"qledger/election"
	"qledger/execrecord"
	"qledger/function"
)

func sampleExec(id string) execrecord.Execution {
	x := execrecord.Execution{NodeID: id, Outcome: function.OutcomeOK, ExitCode: 0, Stdout: []byte(`{"value":101}`), Detail: "ran", Micros: 42, Err: ""}
	x.Hash = function.ResultHash(x.Outcome, x.ExitCode, x.Stdout)
	return x
}

func sampleInvoke() InvokeRequest {
	req := InvokeRequest{Group: 2, Function: "inc", Input: []byte(`{"value":100}`), KeyID: "session-7", Caller: "client:alice",
		Route: "requested", Hops: 1, Origin: execrecord.Origin{ClientAddr: "10.0.0.1:5555", Headers: []execrecord.Header{{Name: "User-Agent", Value: "test"}}}}
	req.RequestID = sha256.Sum256([]byte("request"))
	req.ElectionKey = sha256.Sum256([]byte("key"))
	return req
}

func sampleInvokeResult(t testing.TB) InvokeResult {
	t.Helper()
	cands := []election.Reveal{{NodeID: "n1", Nonce: sha256.Sum256([]byte("a"))}, {NodeID: "n2", Nonce: sha256.Sum256([]byte("b"))}}
	key := sha256.Sum256([]byte("key"))
	el, err := election.Elect(key, "session-7", []byte("request"), cands)
	if err != nil {
		t.Fatal(err)
	}
	x1, x2 := sampleExec(el.Executor()), sampleExec(el.Verifier())
	rec := execrecord.Record{Version: execrecord.Version, Function: "inc", FnVersion: "1", Input: []byte(`{"value":100}`), Timestamp: 7, Election: el,
		Executor: el.Executor(), Verifier: el.Verifier(), Executions: []execrecord.Execution{x1, x2}, Agreed: true, Verified: true,
		ResultHash: x1.Hash, Outcome: x1.Outcome, Response: x1.Stdout, Micros: 900, Origin: execrecord.Origin{ClientAddr: "10.0.0.1:5555"}}
	res := InvokeResult{Record: rec, Receipt: Receipt{Group: 2, Height: 9, Index: 31, Duplicate: true}}
	res.Receipt.ID = sha256.Sum256([]byte("tx"))
	return res
}

// Every binary message decodes to what was encoded.
func TestElectionMessagesRoundTrip(t *testing.T) {
	pledge := nextPledge{Present: true, H: sha256.Sum256([]byte("pledge"))}
	id := sha256.Sum256([]byte("r"))
	for _, in := range []nonceReq{{Op: nonceCommit, RequestID: id}, {Op: nonceReveal, RequestID: id}, {Op: nonceRevealPledge, RequestID: id, Pledge: pledge.H}} {
		var nr nonceReq
		if err := nr.unmarshal(in.marshal()); err != nil || nr != in {
			t.Fatalf("nonce request: %+v, %v, want %+v", nr, err, in)
		}
	}
	for _, out := range []nonceResp{{NodeID: "node-1", Value: sha256.Sum256([]byte("h"))}, {NodeID: "node-1", Value: sha256.Sum256([]byte("h")), Next: pledge}} {
		var ns nonceResp
		if err := ns.unmarshal(out.marshal()); err != nil || ns != out {
			t.Fatalf("nonce response: %+v, %v, want %+v", ns, err, out)
		}
	}
	x := execReq{RequestID: id, Function: "inc", CodeHash: sha256.Sum256([]byte("code")), Input: []byte("in"), DeployHeight: 12}
	for _, rr := range []revealRunReq{{Exec: x}, {ByPledge: true, Pledge: pledge.H, Exec: x}} {
		b, err := rr.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var rr2 revealRunReq
		if err := rr2.unmarshal(b); err != nil || !reflect.DeepEqual(rr2, rr) {
			t.Fatalf("reveal-and-run request: %+v, %v, want %+v", rr2, err, rr)
		}
	}
	for i, x := range []execrecord.Execution{sampleExec("n1"), {NodeID: "n2", Err: "no such function", Stdout: []byte{}}} {
		resp := revealRunResp{Nonce: sha256.Sum256([]byte("nonce")), Exec: x}
		if i == 0 {
			resp.Next = pledge
		}
		b, err := resp.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got revealRunResp
		if err := got.unmarshal(b); err != nil || !reflect.DeepEqual(got, resp) {
			t.Fatalf("reveal-and-run answer: %+v, %v, want %+v", got, err, resp)
		}
	}
	req := sampleInvoke()
	b, err := marshalInvokeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unmarshalInvokeRequest(b); err != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("invocation: %+v, %v, want %+v", got, err, req)
	}
	res := sampleInvokeResult(t)
	b, err = marshalInvokeResult(res)
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalInvokeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := got.Record.MarshalBinary()
	w, _ := res.Record.MarshalBinary()
	if !bytes.Equal(a, w) || got.Receipt != res.Receipt || got.Record.Version != res.Record.Version {
		t.Fatalf("invocation answer: %+v, want %+v", got, res)
	}
}

// Bad bodies are refused with a named error that says what is wrong, and
// decode nothing.
func TestElectionMessagesBadInput(t *testing.T) {
	good := nonceReq{Op: nonceCommit, RequestID: sha256.Sum256([]byte("r"))}.marshal()
	rr, _ := revealRunReq{Exec: execReq{Function: "inc", Input: []byte("x")}}.marshal()
	resp, _ := revealRunResp{Exec: sampleExec("n1")}.marshal()
	inv, _ := marshalInvokeRequest(sampleInvoke())
	res, _ := marshalInvokeResult(sampleInvokeResult(t))
	badOutcome := bytes.Clone(resp)
	badOutcome[1+32+2+2] = 200 // version, nonce, node ID "n1", then the outcome
	decoders := map[string]func([]byte) error{
		"nonce request":   func(b []byte) error { var r nonceReq; return r.unmarshal(b) },
		"nonce response":  func(b []byte) error { var r nonceResp; return r.unmarshal(b) },
		"reveal-and-run":  func(b []byte) error { var r revealRunReq; return r.unmarshal(b) },
		"answer":          func(b []byte) error { var r revealRunResp; return r.unmarshal(b) },
		"invocation":      func(b []byte) error { _, err := unmarshalInvokeRequest(b); return err },
		"invocation done": func(b []byte) error { _, err := unmarshalInvokeResult(b); return err },
	}
	cases := []struct {
		name, decoder string
		in            []byte
		want          error
		says          string
	}{
		{"empty", "nonce request", nil, ErrBadRequest, "version"},
		{"truncated", "nonce request", good[:20], ErrBadRequest, "request ID needs 32 bytes"},
		{"trailing", "nonce request", append(bytes.Clone(good), 0), ErrBadRequest, "after the value"},
		{"unknown version", "nonce request", append([]byte{9}, good[1:]...), ErrBadRequest, "version 9"},
		{"unknown op", "nonce request", append([]byte{1, 7}, good[2:]...), ErrBadRequest, "unknown op 7"},
		{"truncated", "nonce response", []byte{1, 0, 5, 'a'}, ErrBadRequest, "node ID needs 5 bytes"},
		{"truncated", "reveal-and-run", rr[:len(rr)-1], ErrBadRequest, "input needs 1 bytes"},
		{"oversize function", "reveal-and-run", append(append([]byte{1, 0}, make([]byte, 32)...), 0xff, 0xff), ErrTooLarge, "limit 1024"},
		{"bad pledge flag", "reveal-and-run", append([]byte{1, 2}, rr[2:]...), ErrBadRequest, "pledge flag 2"},
		{"truncated pledge", "nonce request", append([]byte{1, nonceRevealPledge}, make([]byte, 40)...), ErrBadRequest, "pledge needs 32 bytes, 8 left"},
		{"bad pledge flag", "nonce response", append(nonceResp{NodeID: "n"}.marshal()[:1+3+32], 5), ErrBadRequest, "pledge flag 5"},
		{"unknown outcome", "answer", badOutcome, ErrBadRequest, "outcome 200"},
		{"truncated", "answer", resp[:40], ErrBadRequest, "needs"},
		{"truncated", "invocation", inv[:len(inv)-3], ErrBadRequest, "needs"},
		{"trailing", "invocation", append(bytes.Clone(inv), 1), ErrBadRequest, "after the value"},
		{"truncated", "invocation done", res[:len(res)-1], ErrBadRequest, "duplicate needs 1 bytes"},
		{"bad record", "invocation done", append([]byte{1, 2, 0, 0, 0, 1, 7}, make([]byte, 32+4+8+8+1)...), ErrBadRequest, "record version 7"},
	}
	for _, c := range cases {
		err := decoders[c.decoder](c.in)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s %s: %v, want %v saying %q", c.decoder, c.name, err, c.want, c.says)
		}
	}
	if _, err := marshalInvokeRequest(InvokeRequest{Group: -1}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("negative group encoded: %v", err)
	}
	if _, err := (revealRunReq{Exec: execReq{Function: strings.Repeat("f", execrecord.MaxNameLen+1)}}).marshal(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize function name encoded: %v", err)
	}
}

// FuzzElectionMessages: no input makes a decoder panic, and whatever one
// accepts encodes back to the same bytes (the invocation answer, whose
// record may arrive in an older form, is stable after one round).
func FuzzElectionMessages(f *testing.F) {
	f.Add(uint8(0), nonceReq{Op: nonceCommit}.marshal())
	f.Add(uint8(1), nonceResp{NodeID: "n1"}.marshal())
	rr, _ := revealRunReq{Exec: execReq{Function: "inc", Input: []byte("x")}}.marshal()
	f.Add(uint8(2), rr)
	resp, _ := revealRunResp{Exec: sampleExec("n1")}.marshal()
	f.Add(uint8(3), resp)
	inv, _ := marshalInvokeRequest(sampleInvoke())
	f.Add(uint8(4), inv)
	res, _ := marshalInvokeResult(sampleInvokeResult(f))
	f.Add(uint8(5), res)
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		var again []byte
		var err error
		switch which % 6 {
		case 0:
			var r nonceReq
			if r.unmarshal(b) != nil {
				return
			}
			again = r.marshal()
		case 1:
			var r nonceResp
			if r.unmarshal(b) != nil {
				return
			}
			again = r.marshal()
		case 2:
			var r revealRunReq
			if r.unmarshal(b) != nil {
				return
			}
			again, err = r.marshal()
		case 3:
			var r revealRunResp
			if r.unmarshal(b) != nil {
				return
			}
			again, err = r.marshal()
		case 4:
			r, derr := unmarshalInvokeRequest(b)
			if derr != nil {
				return
			}
			again, err = marshalInvokeRequest(r)
		case 5:
			r, derr := unmarshalInvokeResult(b)
			if derr != nil {
				return
			}
			if b, err = marshalInvokeResult(r); err != nil {
				t.Fatalf("an accepted answer does not encode: %v", err)
			}
			r, err = unmarshalInvokeResult(b)
			if err != nil {
				t.Fatalf("a re-encoded answer does not decode: %v", err)
			}
			again, err = marshalInvokeResult(r)
		}
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("message %d re-encodes differently (%v)", which%6, err)
		}
	})
}

// oldNode serves only the JSON election and execution methods of a
// release from before the binary ones, as candidate "old".
func oldNode(t *testing.T, executed *atomic.Int32) string {
	var nonces election.Nonces
	addr, _ := startRPCWith(t, 5*time.Second, map[method]rpcHandler{
		mElectCommit: func(_ context.Context, body []byte) (any, error) {
			var req commitReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			h, err := nonces.Commit(req.RequestID[:])
			return commitResp{NodeID: "old", H: h}, err
		},
		mElectReveal: func(_ context.Context, body []byte) (any, error) {
			var req commitReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			nonce, err := nonces.Reveal(req.RequestID[:])
			if err != nil {
				return nil, ErrNotFound
			}
			return revealResp{NodeID: "old", Nonce: nonce}, nil
		},
		mExecute: func(_ context.Context, body []byte) (any, error) {
			var req execReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			executed.Add(1)
			return sampleExec("old"), nil
		},
	})
	return addr
}

// A candidate of an older release refuses the binary election methods as
// unknown; each call goes again as JSON and the election runs through
// with it: its commitment, its nonce and its execution.
func TestElectionWithOlderNode(t *testing.T) {
	var executed atomic.Int32
	addr := oldNode(t, &executed)
	n := &Node{info: NodeInfo{ID: "leader"}, client: newRPCClient(5*time.Second, dialer{}, nil), cfg: Config{RPCTimeout: 5 * time.Second}}
	defer n.client.close()
	id := sha256.Sum256([]byte("request"))
	tr := &electionTransport{n: n, addr: map[string]string{"old": addr}, er: execReq{RequestID: id, Function: "inc"}, timeout: time.Second,
		outs: map[string]execrecord.Execution{}, pledged: map[string][election.Size]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	h, err := tr.Commit(ctx, "old", id[:])
	if err != nil {
		t.Fatalf("commit through the JSON method: %v", err)
	}
	nonce, x, err := tr.RevealRun(ctx, "old", id[:])
	if err != nil {
		t.Fatalf("reveal and run through the JSON methods: %v", err)
	}
	if election.HashNonce(nonce) != h {
		t.Fatal("the nonce revealed is not the one committed to")
	}
	if want := sampleExec("old"); x.Failed || x.Hash != want.Hash || executed.Load() != 1 || !reflect.DeepEqual(tr.outs["old"], want) {
		t.Fatalf("execution %+v (kept %+v), %d runs: want the old node's one run", x, tr.outs["old"], executed.Load())
	}
	// Revealed once: a second reveal is refused, and nothing runs.
	if _, _, err := tr.RevealRun(ctx, "old", id[:]); !errors.Is(err, ErrNotFound) || executed.Load() != 1 {
		t.Fatalf("second reveal: %v after %d runs, want ErrNotFound and no run", err, executed.Load())
	}
	if n.pledges.Len("old") != 0 {
		t.Fatal("an older node pledged")
	}
}

// A forwarded invocation to a node of an older release goes again as
// JSON; a node that knows the binary method but refuses the request for
// another reason is not asked twice.
func TestInvokeForwardToOlderNode(t *testing.T) {
	want := sampleInvokeResult(t)
	var jsonCalls, binaryCalls atomic.Int32
	old, _ := startRPCWith(t, 5*time.Second, map[method]rpcHandler{
		mInvoke: func(_ context.Context, body []byte) (any, error) {
			var req InvokeRequest
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			jsonCalls.Add(1)
			return want, nil
		},
	})
	picky, _ := startRPCWith(t, 5*time.Second, map[method]rpcHandler{
		mInvoke: func(context.Context, []byte) (any, error) { jsonCalls.Add(1); return want, nil },
		mInvokeBinary: func(context.Context, []byte) (any, error) {
			binaryCalls.Add(1)
			return nil, ErrBadRequest
		},
	})
	n := &Node{info: NodeInfo{ID: "gateway"}, client: newRPCClient(5*time.Second, dialer{}, nil)}
	defer n.client.close()
	ctx := context.Background()
	got, err := n.callInvoke(ctx, old, sampleInvoke())
	if err != nil || jsonCalls.Load() != 1 {
		t.Fatalf("forward to an older node: %v after %d JSON calls", err, jsonCalls.Load())
	}
	a, _ := got.Record.MarshalBinary()
	b, _ := want.Record.MarshalBinary()
	if !bytes.Equal(a, b) || got.Receipt != want.Receipt {
		t.Fatalf("answer %+v, want %+v", got, want)
	}
	if _, err := n.callInvoke(ctx, picky, sampleInvoke()); !errors.Is(err, ErrBadRequest) || binaryCalls.Load() != 1 || jsonCalls.Load() != 1 {
		t.Fatalf("a refused request: %v, %d binary and %d JSON calls; want ErrBadRequest from one binary call", err, binaryCalls.Load(), jsonCalls.Load())
	}
}
