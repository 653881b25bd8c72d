package faults

import (
	"sort"
	"sync"
	"time"

	"qledger/api/client"
)

// Kind names what an operation did.
type Kind string

// Operation kinds.
const (
	// KindWrite submits a transaction whose payload is its idempotency key.
	KindWrite Kind = "write"
	// KindReadTx reads one transaction by ID.
	KindReadTx Kind = "read-tx"
	// KindReadHead reads the group's head.
	KindReadHead Kind = "read-head"
	// KindInvoke invokes a deployed function with a request ID of the
	// client's choosing; its input is its key.
	KindInvoke Kind = "invoke"
)

// Outcome is what the client learned about an operation.
type Outcome string

// Outcomes. Failed is a definite failure: the operation did not take
// effect (the request never reached a node, or the node refused it before
// proposing it). Unknown is everything else that was not an answer: it
// may or may not have taken effect.
const (
	OK      Outcome = "ok"
	Failed  Outcome = "failed"
	Unknown Outcome = "unknown"
)

// Read levels, as the API names them.
const (
	Linearizable = "linearizable"
	Default      = "default"
	Stale        = "stale"
)

// Op is one client operation: what was asked, of which node, when, and
// what came back.
type Op struct {
	Client int
	Kind   Kind
	// Level is a read's consistency level.
	Level string
	// Node names the node the request went to.
	Node string
	// Key is a write's idempotency key (also its payload); for a
	// transaction read, the key of the write whose transaction is read.
	Key string
	// TxID is the transaction read, or a write's receipt ID.
	TxID             string
	Invoke, Complete time.Time
	Outcome          Outcome
	// Found reports whether a transaction read found the transaction.
	Found bool
	// Index and Height place a written or found transaction: its leaf
	// index in the group's log and its block height.
	Index, Height uint64
	// Head is what a head read returned.
	Head client.Head
	// RequestID (64 hex digits) and Caller ("role:name", as the record
	// names it) identify an invocation; Result is the result hash and
	// Output the output it was answered with.
	RequestID, Caller, Result string
	Output                    []byte
	Err                       string
	// Status is the HTTP status of an error answer, 0 if none came.
	Status int
}

// History records operations from many clients; it is safe for
// concurrent use.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records a completed (or abandoned) operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Ops returns a copy of the operations, ordered by invocation time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Invoke.Before(out[j].Invoke) })
	return out
}

// Entry is one transaction of the final log.
type Entry struct {
	Index, Height uint64
	TxID          string
	// Key is the transaction's idempotency key ("" for transactions the
	// clients did not write).
	Key string
	// Exec is the execution record an "exec" transaction carries.
	Exec *ExecEntry
}

// ExecEntry is what the checkers read of an execution record.
type ExecEntry struct {
	RequestID, Caller string
	Input             []byte
	// Executor is the node the election chose to run the request.
	Executor string
	// Agreed: a majority of the executions agreed on Result, the result
	// hash, and Output.
	Agreed bool
	Result string
	Output []byte
}

// Log is one group's chain as fetched and verified after the faults
// healed: the reference the checkers hold the history against.
type Log struct {
	Entries []Entry
	// Hashes is each block's hash by height.
	Hashes map[uint64]string
	// Size is the number of transactions in the log.
	Size uint64
}

// byKey indexes the log's entries by idempotency key.
func (l Log) byKey() map[string][]Entry {
	out := map[string][]Entry{}
	for _, e := range l.Entries {
		if e.Key != "" {
			out[e.Key] = append(out[e.Key], e)
		}
	}
	return out
}

// byTxID indexes the log's entries by transaction ID.
func (l Log) byTxID() map[string]Entry {
	out := map[string]Entry{}
	for _, e := range l.Entries {
		out[e.TxID] = e
	}
	return out
}

// write is every attempt at one idempotency key, folded into one logical
// operation: invoked with the first attempt, completed with the first
// acknowledged one (never, if none was).
type write struct {
	key      string
	invoke   time.Time
	complete time.Time // zero: never acknowledged
	acked    bool
	index    uint64 // from the first receipt
	indices  map[uint64]bool
	failed   bool // every attempt failed definitely
}

// writes folds the history's write attempts by key.
func writes(ops []Op) map[string]*write {
	out := map[string]*write{}
	for _, op := range ops {
		if op.Kind != KindWrite {
			continue
		}
		w := out[op.Key]
		if w == nil {
			w = &write{key: op.Key, invoke: op.Invoke, indices: map[uint64]bool{}, failed: true}
			out[op.Key] = w
		}
		if op.Invoke.Before(w.invoke) {
			w.invoke = op.Invoke
		}
		if op.Outcome != Failed {
			w.failed = false
		}
		if op.Outcome == OK {
			w.indices[op.Index] = true
			if !w.acked || op.Complete.Before(w.complete) {
				w.complete, w.index = op.Complete, op.Index
			}
			w.acked = true
		}
	}
	return out
}
