package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"qledger/chain"
)

// queuedForwarder is a forwarder that is not yet running, its one slot
// taken (as by a batch in flight), with n writes queued behind it (by
// goroutines waiting in submit): started, and the slot released, it
// sends them in one batch. Each write's outcome goes to results[i].
func queuedForwarder(t *testing.T, n int, send func(context.Context, [][]byte) ([]forwardOutcome, error)) (raws [][]byte, results []forwardOutcome, run func() func()) {
	t.Helper()
	stop := make(chan struct{})
	f := newForwarder(stop, 1, send)
	f.slots <- struct{}{}
	raws = make([][]byte, n)
	results = make([]forwardOutcome, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	for i := range raws {
		raws[i] = []byte(fmt.Sprintf("write %d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.submit(ctx, raws[i])
			results[i] = forwardOutcome{r: r, err: err}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for len(f.in) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued", len(f.in), n)
		}
		time.Sleep(time.Millisecond)
	}
	run = func() func() {
		go f.run()
		<-f.slots
		return func() {
			wg.Wait()
			cancel()
			close(stop)
		}
	}
	return raws, results, run
}

func receiptFor(raw []byte) Receipt { return Receipt{ID: sha256.Sum256(raw), Height: 7} }

// TestForwarderAnswersEachWriteOnce queues writes while the forwarder is
// not running: started, it sends them as one batch, and each write gets
// its own answer — one write's error fails no other. A forwarder that
// sent each write alone would call send once per write; one that mixed up
// answers would hand a write another's receipt.
func TestForwarderAnswersEachWriteOnce(t *testing.T) {
	const n, bad = 40, 17
	var mu sync.Mutex
	var batches [][][]byte
	send := func(_ context.Context, txs [][]byte) ([]forwardOutcome, error) {
		mu.Lock()
		batches = append(batches, txs)
		mu.Unlock()
		out := make([]forwardOutcome, len(txs))
		for i, raw := range txs {
			if string(raw) == fmt.Sprintf("write %d", bad) {
				out[i].err = remoteErr(codeOf(ErrConflict), "cluster: idempotency key reused: key \"k\"")
				continue
			}
			out[i].r = receiptFor(raw)
		}
		return out, nil
	}
	raws, results, run := queuedForwarder(t, n, send)
	run()()
	if len(batches) != 1 || len(batches[0]) != n {
		sizes := make([]int, len(batches))
		for i, b := range batches {
			sizes[i] = len(b)
		}
		t.Fatalf("%d queued writes went in batches of %v, want one batch", n, sizes)
	}
	for i, o := range results {
		switch {
		case i == bad && !errors.Is(o.err, ErrConflict):
			t.Errorf("write %d: error %v, want its own ErrConflict", i, o.err)
		case i != bad && o.err != nil:
			t.Errorf("write %d failed with %v: another write's error failed it", i, o.err)
		case i != bad && o.r != receiptFor(raws[i]):
			t.Errorf("write %d got receipt %+v, not its own", i, o.r)
		}
	}
}

// TestForwarderFailsEachWriteOfAFailedBatch: a batch that fails as a whole
// (here the leader moved while it was in flight) answers every one of its
// writes with that error, so each write's submitRaw sends it again.
func TestForwarderFailsEachWriteOfAFailedBatch(t *testing.T) {
	send := func(context.Context, [][]byte) ([]forwardOutcome, error) {
		return nil, fmt.Errorf("%w: request to 127.0.0.1:1", errLeaderMoved)
	}
	_, results, run := queuedForwarder(t, 8, send)
	run()()
	for i, o := range results {
		if !errors.Is(o.err, errLeaderMoved) || !retryable(o.err) {
			t.Errorf("write %d: %v, want the batch's retryable errLeaderMoved", i, o.err)
		}
	}
}

// TestSubmitBatchAnswersEachWrite sends one batch straight to the leader's
// handler: new writes, a conflicting reuse of an idempotency key, bytes
// that are no transaction, a write for another group and a repeat of a
// committed write each get their own answer, and the good ones commit.
func TestSubmitBatchAnswersEachWrite(t *testing.T) {
	l := startLocal(t, 1, 3)
	leader := waitLeader(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keyed := chain.Tx{Kind: chain.TxData, Payload: []byte("first use of the key"), IdempotencyKey: "k"}
	first, err := leader.Submit(ctx, keyed)
	if err != nil {
		t.Fatal(err)
	}
	tx := func(payload, key string, group uint32) []byte {
		t := chain.Tx{Kind: chain.TxData, Payload: []byte(payload), IdempotencyKey: key, Group: group}
		t.Nonce[0] = byte(len(payload))
		return t.Encode()
	}
	cases := []struct {
		name string
		raw  []byte
		want error // nil: committed, with its own ID
		dup  bool
	}{
		{"new", tx("new write a", "", 0), nil, false},
		{"key reused with other bytes", tx("other bytes", "k", 0), ErrConflict, false},
		{"not a transaction", []byte{0xff, 1, 2}, ErrBadRequest, false},
		{"another group", tx("for group 1", "", 1), ErrBadRequest, false},
		{"new too", tx("new write b", "", 0), nil, false},
		{"key repeated, same bytes", tx("first use of the key", "k", 0), nil, true},
	}
	// The repeat must carry the committed bytes, nonce included.
	rec, err := leader.Store().Tx(first.ID)
	if err != nil {
		t.Fatal(err)
	}
	cases[5].raw = rec.TxBytes
	req := submitBatchRequest{}
	for _, c := range cases {
		req.Txs = append(req.Txs, c.raw)
	}
	var resp submitBatchResponse
	if err := leader.client.call(ctx, leader.info.Addr, mSubmitBatch, req, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != len(cases) {
		t.Fatalf("%d answers for %d writes", len(resp.Results), len(cases))
	}
	for i, c := range cases {
		it := resp.Results[i]
		var err error
		if it.Code != 0 {
			err = remoteErr(it.Code, it.Error)
		}
		switch {
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == nil && (it.Receipt.ID != chain.TxID(c.raw) || it.Receipt.Duplicate != c.dup):
			t.Errorf("%s: receipt %+v, want ID %x, duplicate %v", c.name, it.Receipt, chain.TxID(c.raw), c.dup)
		}
	}
	if resp.Results[5].Receipt.Height != first.Height {
		t.Errorf("the repeat is answered at height %d, committed at %d", resp.Results[5].Receipt.Height, first.Height)
	}
}

// TestSubmitBatchRefusedByFollower: a batch that reaches a node not
// leading its group is refused whole with ErrNotLeader (retryable), and
// nothing of it commits there.
func TestSubmitBatchRefusedByFollower(t *testing.T) {
	l := startLocal(t, 1, 3)
	waitLeader(t, l)
	f := l.Nodes[follower(l)]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx := chain.Tx{Kind: chain.TxData, Payload: []byte("to a follower")}
	err := f.client.call(ctx, f.info.Addr, mSubmitBatch, submitBatchRequest{Txs: [][]byte{tx.Encode()}}, &submitBatchResponse{})
	if !errors.Is(err, ErrNotLeader) || !retryable(err) {
		t.Fatalf("a batch at a follower: %v, want ErrNotLeader", err)
	}
}

// TestConcurrentWritesThroughFollower sends many writes at once through a
// follower (batched to the leader): each is acknowledged once, with a
// receipt of its own that the chain holds exactly once.
func TestConcurrentWritesThroughFollower(t *testing.T) {
	l := startLocal(t, 1, 3)
	waitLeader(t, l)
	f := l.Nodes[follower(l)]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 200
	receipts := make([]Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			receipts[i], errs[i] = f.Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprintf("concurrent %d", i))})
		}()
	}
	wg.Wait()
	seen := map[chain.Hash]int{}
	for i, r := range receipts {
		if errs[i] != nil {
			t.Fatalf("write %d: %v", i, errs[i])
		}
		if r.Duplicate {
			t.Errorf("write %d, sent once, answered as a duplicate", i)
		}
		if j, ok := seen[r.ID]; ok {
			t.Fatalf("writes %d and %d got the same receipt %x", j, i, r.ID)
		}
		seen[r.ID] = i
	}
	leader := waitLeader(t, l)
	for i, r := range receipts {
		rec, err := leader.Store().Tx(r.ID)
		if err != nil {
			t.Fatalf("write %d: receipt %x not in the chain: %v", i, r.ID, err)
		}
		got, err := chain.DecodeTx(rec.TxBytes)
		if err != nil || string(got.Payload) != fmt.Sprintf("concurrent %d", i) {
			t.Fatalf("write %d: the receipt's transaction is %q (%v)", i, got.Payload, err)
		}
	}
}

// TestBatchRefusedFallsBackToSingleWrite: a leader that refuses a batch as
// a bad request, as one from before mSubmitBatch does ("unknown rpc
// method"), has submitted nothing, so the follower sends the write alone
// (mSubmit) and it commits once.
func TestBatchRefusedFallsBackToSingleWrite(t *testing.T) {
	l := startLocal(t, 1, 3)
	waitLeader(t, l)
	f := l.Nodes[follower(l)]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A batch the leader refuses whole (here: an empty one) is errBatchRefused.
	if _, err := f.sendBatch(ctx, nil); !errors.Is(err, errBatchRefused) {
		t.Fatalf("a batch refused as a bad request: %v, want errBatchRefused", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	refused := newForwarder(stop, 1, func(context.Context, [][]byte) ([]forwardOutcome, error) {
		return nil, fmt.Errorf("%w: cluster: unknown rpc method %d", errBatchRefused, mSubmitBatch)
	})
	go refused.run()
	tx := chain.Tx{Kind: chain.TxData, Payload: []byte("sent alone after a refused batch")}
	tx.Nonce[0] = 1
	r, err := f.forwardThrough(ctx, refused, tx.Encode(), 0)
	if err != nil {
		t.Fatalf("write after a refused batch: %v", err)
	}
	if r.Duplicate || r.ID != chain.TxID(tx.Encode()) {
		t.Fatalf("receipt %+v: want a first commit of the write", r)
	}
	rec, err := waitLeader(t, l).Store().Tx(r.ID)
	if err != nil {
		t.Fatalf("the write is not in the chain: %v", err)
	}
	if got, err := chain.DecodeTx(rec.TxBytes); err != nil || string(got.Payload) != "sent alone after a refused batch" {
		t.Fatalf("the receipt's transaction is %q (%v)", got.Payload, err)
	}
}
