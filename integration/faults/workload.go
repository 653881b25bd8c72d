package faults

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"qledger/api/client"
)

// Workload is the clients of one run: writers that submit unique payloads
// with idempotency keys, retrying a write whose outcome they did not learn
// with the same key; invokers that invoke a deployed function with request
// IDs of their own, retrying likewise with the same ID; and readers that
// read heads and the transactions of acknowledged writes at every level.
// Every attempt is recorded.
type Workload struct {
	Writers, Readers int
	// Invokers invoke Function (an echo: output = input) through each
	// node's Invoker client, as Caller; none without a Function.
	Invokers int
	Function string
	Caller   string
	// OpTimeout bounds one attempt.
	OpTimeout time.Duration
	// Retries is how many more attempts a write gets after one whose
	// outcome is unknown.
	Retries int
	// Prefix starts every idempotency key, so the run's writes are told
	// from anything else in the log.
	Prefix string
	// Group is the group every operation names. Nil lets the server
	// choose where to write and invoke, and reads group 0.
	Group *int
	// Replicas, if set, are the only nodes stale reads go to: the
	// group's own. A node of another group forwards a stale read to
	// whichever replica of the group it reaches, so what it answers need
	// not be monotonic; the other operations go to any node.
	Replicas []*Node

	History History

	mu       sync.Mutex
	receipts []client.Receipt // acknowledged, for readers to read back
	keyOf    map[string]string
}

// Run drives the clients against nodes until ctx is done.
func (w *Workload) Run(ctx context.Context, nodes []*Node, seed uint64) {
	w.keyOf = map[string]string{}
	var wg sync.WaitGroup
	invokers := w.Invokers
	if w.Function == "" {
		invokers = 0
	}
	for c := range w.Writers + w.Readers + invokers {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		go func() {
			defer wg.Done()
			switch {
			case c < w.Writers:
				w.writer(ctx, c, nodes, rng)
			case c < w.Writers+w.Readers:
				w.reader(ctx, c, nodes, rng)
			default:
				w.invoker(ctx, c, nodes, rng)
			}
		}()
	}
	wg.Wait()
}

func (w *Workload) writer(ctx context.Context, c int, nodes []*Node, rng *rand.Rand) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("%s-w%d-%d", w.Prefix, c, i)
		for try := 0; try <= w.Retries && ctx.Err() == nil; try++ {
			n := nodes[rng.IntN(len(nodes))]
			op := Op{Client: c, Kind: KindWrite, Node: n.Name, Key: key, Invoke: time.Now()}
			octx, cancel := context.WithTimeout(context.Background(), w.OpTimeout)
			r, _, err := n.API.Submit(octx, []byte(key), client.SubmitOptions{IdempotencyKey: key, Group: w.Group})
			cancel()
			op.Complete, op.Outcome, op.Err, op.Status = time.Now(), outcome(err), errText(err), statusOf(err)
			if err == nil {
				op.TxID, op.Index, op.Height = r.ID, r.Index, r.Height
				w.mu.Lock()
				w.receipts = append(w.receipts, r)
				w.keyOf[r.ID] = key
				w.mu.Unlock()
			}
			w.History.Add(op)
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// InvokePrefix starts the input of every invocation of w (and so of its
// execution records): CheckExecution's prefix.
func (w *Workload) InvokePrefix() string { return w.Prefix + "-i" }

// invoker invokes w.Function with unique inputs, each with a request ID
// derived from its input; an attempt whose outcome is unknown is retried
// with the same request ID through another random node.
func (w *Workload) invoker(ctx context.Context, c int, nodes []*Node, rng *rand.Rand) {
	for i := 0; ctx.Err() == nil; i++ {
		input := fmt.Sprintf("%s%d-%d", w.InvokePrefix(), c, i)
		sum := sha256.Sum256([]byte(input))
		rid := hex.EncodeToString(sum[:])
		for try := 0; try <= w.Retries && ctx.Err() == nil; try++ {
			n := nodes[rng.IntN(len(nodes))]
			op := Op{Client: c, Kind: KindInvoke, Node: n.Name, Key: input, RequestID: rid, Caller: w.Caller, Invoke: time.Now()}
			octx, cancel := context.WithTimeout(context.Background(), w.OpTimeout)
			r, err := n.Invoker.InvokeWith(octx, w.Function, client.InvokeRequest{Input: []byte(input), RequestID: rid, Group: w.Group})
			cancel()
			op.Complete, op.Outcome, op.Err, op.Status = time.Now(), outcome(err), errText(err), statusOf(err)
			if err == nil {
				op.TxID, op.Index, op.Height = r.Receipt.ID, r.Receipt.Index, r.Receipt.Height
				op.Result, op.Output = r.ResultHash, r.Output
			}
			w.History.Add(op)
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// group is the group w reads.
func (w *Workload) group() int {
	if w.Group == nil {
		return 0
	}
	return *w.Group
}

var levels = []string{Linearizable, Default, Stale}

func (w *Workload) reader(ctx context.Context, c int, nodes []*Node, rng *rand.Rand) {
	for ctx.Err() == nil {
		level := levels[rng.IntN(len(levels))]
		n := nodes[rng.IntN(len(nodes))]
		if level == Stale && len(w.Replicas) > 0 {
			n = w.Replicas[rng.IntN(len(w.Replicas))]
		}
		op := Op{Client: c, Node: n.Name, Level: level, Kind: KindReadHead}
		w.mu.Lock()
		if len(w.receipts) > 0 && rng.IntN(2) == 0 {
			// Recent writes are the interesting ones to read back.
			r := w.receipts[len(w.receipts)-1-rng.IntN(min(len(w.receipts), 50))]
			op.Kind, op.TxID, op.Key = KindReadTx, r.ID, w.keyOf[r.ID]
		}
		w.mu.Unlock()
		op.Invoke = time.Now()
		octx, cancel := context.WithTimeout(context.Background(), w.OpTimeout)
		var err error
		if op.Kind == KindReadHead {
			op.Head, err = n.API.Head(octx, w.group(), client.Level(level))
		} else {
			var r client.TxResponse
			r, err = n.API.Tx(octx, op.TxID, client.Level(level))
			op.Found, op.Index, op.Height = err == nil, r.Index, r.Height
			var ae *client.APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				err = nil // an answer: not there
			}
		}
		cancel()
		op.Complete, op.Outcome, op.Err, op.Status = time.Now(), outcome(err), errText(err), statusOf(err)
		w.History.Add(op)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// outcome classifies an attempt's error. No error is a definite
// failure: even "connection refused" is not, because net/http resends a
// request that carries an Idempotency-Key header on a new connection when
// the first one broke, so a write may have reached a node that was then
// killed, and the refusal came from the resend.
func outcome(err error) Outcome {
	if err == nil {
		return OK
	}
	return Unknown
}

// statusOf is the HTTP status of an error answer, 0 for no answer.
func statusOf(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
