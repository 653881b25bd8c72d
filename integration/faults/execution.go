package faults

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Execution is what CheckExecution found.
type Execution struct {
	// Invocations counts distinct (caller, request ID) pairs sent; Acked
	// those with at least one acknowledged attempt; Records the execution
	// records of the run in the log.
	Invocations, Acked, Records int
	// Duplicated: a request with more than one record. Missing: an
	// acknowledged request with none. Changed: an answer (a first run or
	// a retry) that differs from the record, or a record that differs
	// from the request. Unsent: a record of a request no client sent.
	Duplicated, Missing, Changed, Unsent int
	// UnknownPresent and UnknownAbsent split the requests no attempt of
	// which was acknowledged by whether a record committed.
	UnknownPresent, UnknownAbsent int
	// Executors counts the distinct nodes the run's records name as
	// executor: more than the voters when executor nodes took part.
	Executors int
	// Problems describes each violation, one line each.
	Problems []string
}

// OK reports whether no violation was found.
func (x Execution) OK() bool { return len(x.Problems) == 0 }

// invocation is every attempt at one (caller, request ID), folded into
// one logical operation: invoked with the first attempt, completed with
// the first acknowledged one.
type invocation struct {
	caller, rid, input string
	invoke, complete   time.Time
	// index is the receipt's of the first acknowledged attempt.
	index uint64
	acked bool
	// answers are the acknowledged attempts.
	answers []Op
}

// invocations folds the history's invocation attempts by (caller,
// request ID).
func invocations(ops []Op) map[[2]string]*invocation {
	out := map[[2]string]*invocation{}
	for _, op := range ops {
		if op.Kind != KindInvoke {
			continue
		}
		k := [2]string{op.Caller, op.RequestID}
		inv := out[k]
		if inv == nil {
			inv = &invocation{caller: op.Caller, rid: op.RequestID, input: op.Key, invoke: op.Invoke}
			out[k] = inv
		}
		if op.Invoke.Before(inv.invoke) {
			inv.invoke = op.Invoke
		}
		if op.Outcome == OK {
			if !inv.acked || op.Complete.Before(inv.complete) {
				inv.complete, inv.index = op.Complete, op.Index
			}
			inv.acked = true
			inv.answers = append(inv.answers, op)
		}
	}
	return out
}

// CheckExecution holds the invocations of ops against the final log's
// execution records: every (caller, request ID) has at most one record;
// an acknowledged one has exactly one, at the index its receipts named,
// whose executions agreed, whose input is what was sent, and whose result
// every acknowledged attempt — the first run and every retry — was
// answered with; no record of the run (its input starts with prefix)
// exists for a request no client sent.
func CheckExecution(ops []Op, log Log, prefix string) Execution {
	var x Execution
	bad := func(counter *int, format string, args ...any) {
		if counter != nil {
			*counter++
		}
		x.Problems = append(x.Problems, fmt.Sprintf(format, args...))
	}
	records := log.records(prefix)
	executors := map[string]bool{}
	for _, recs := range records {
		x.Records += len(recs)
		for _, e := range recs {
			executors[e.Exec.Executor] = true
		}
	}
	x.Executors = len(executors)
	invs := invocations(ops)
	keys := make([][2]string, 0, len(invs))
	for k := range invs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][1] < keys[j][1] })
	for _, k := range keys {
		inv, recs := invs[k], records[k]
		x.Invocations++
		name := fmt.Sprintf("request %.12s of %s", inv.rid, inv.caller)
		if len(recs) > 1 {
			bad(&x.Duplicated, "%s has %d execution records (indices %v)", name, len(recs), indices(recs))
		}
		if len(recs) > 0 {
			checkRecord(name, inv, recs[0], func(format string, args ...any) { bad(&x.Changed, format, args...) })
		}
		switch {
		case inv.acked:
			x.Acked++
			if len(recs) == 0 {
				bad(&x.Missing, "acknowledged %s (index %d) has no execution record", name, inv.answers[0].Index)
			}
		case len(recs) > 0:
			x.UnknownPresent++
		default:
			x.UnknownAbsent++
		}
	}
	unsent := make([]Entry, 0)
	for k, recs := range records {
		if invs[k] == nil {
			unsent = append(unsent, recs...)
		}
	}
	sort.Slice(unsent, func(i, j int) bool { return unsent[i].Index < unsent[j].Index })
	for _, e := range unsent {
		bad(&x.Unsent, "execution record at index %d of request %.12s by %s: no client sent it", e.Index, e.Exec.RequestID, e.Exec.Caller)
	}
	return x
}

// checkRecord holds one request's record against what was sent and every
// acknowledged answer.
func checkRecord(name string, inv *invocation, rec Entry, bad func(string, ...any)) {
	x := rec.Exec
	if string(x.Input) != inv.input {
		bad("%s: the record at index %d holds input %q, the client sent %q", name, rec.Index, x.Input, inv.input)
	}
	if !x.Agreed {
		bad("%s: the executions recorded at index %d disagree", name, rec.Index)
	}
	for _, a := range inv.answers {
		switch {
		case a.Index != rec.Index:
			bad("%s answered with a receipt at index %d; the record is at %d", name, a.Index, rec.Index)
		case a.Result != x.Result || !bytes.Equal(a.Output, x.Output):
			bad("%s answered result %.12s (output %q) by %s; the record holds %.12s (output %q)", name, a.Result, a.Output, a.Node, x.Result, x.Output)
		}
	}
}

// records indexes the log's execution records whose input starts with
// prefix by (caller, request ID).
func (l Log) records(prefix string) map[[2]string][]Entry {
	out := map[[2]string][]Entry{}
	for _, e := range l.Entries {
		if e.Exec != nil && strings.HasPrefix(string(e.Exec.Input), prefix) {
			k := [2]string{e.Exec.Caller, e.Exec.RequestID}
			out[k] = append(out[k], e)
		}
	}
	return out
}
