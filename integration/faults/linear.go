package faults

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// logInput is one operation on the model of a group's append-only log.
// The model's state is the number of transactions known to be committed:
// a log commits in index order, so committing index i commits all before.
type logInput struct {
	kind Kind
	// index: a write's or transaction read's position in the final log.
	index uint64
	// found: a transaction read found its transaction.
	found bool
	// size: the log size a head read returned.
	size uint64
}

// logModel is the sequential specification of one group's log, starting
// with from transactions committed:
//   - a write at index i takes effect while fewer than i+1 transactions
//     are committed, and commits the log up to i;
//   - a head read returns a size no smaller than what is committed (the
//     log may hold transactions no client wrote), and commits up to it;
//   - a transaction read that finds its transaction at i commits up to i;
//     one that misses a transaction the log holds at i happens while the
//     log is shorter than i+1.
func logModel(from uint64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return from },
		Step: func(state, input, _ any) (bool, any) {
			n, in := state.(uint64), input.(logInput)
			switch {
			case in.kind == KindWrite:
				return n <= in.index, max(n, in.index+1)
			case in.kind == KindReadHead:
				return in.size >= n, in.size
			case in.found:
				return true, max(n, in.index+1)
			default:
				return n <= in.index, n
			}
		},
		DescribeOperation: func(input, _ any) string {
			in := input.(logInput)
			switch {
			case in.kind == KindWrite:
				return fmt.Sprintf("write @%d", in.index)
			case in.kind == KindReadHead:
				return fmt.Sprintf("head -> %d", in.size)
			case in.found:
				return fmt.Sprintf("tx @%d found", in.index)
			default:
				return fmt.Sprintf("tx @%d missing", in.index)
			}
		},
	}
}

// Linearizability is what CheckLinearizable found.
type Linearizability struct {
	// Result is porcupine's verdict: Ok, Illegal, or Unknown if it ran
	// out of time.
	Result porcupine.CheckResult
	// Ops counts the operations checked.
	Ops int
}

// CheckLinearizable asks porcupine whether the writes and the reads at
// the given levels (linearizable and default: the docs promise both are
// linearizable) form a history of one append-only log that held from
// transactions when the history began. Writes are folded
// by idempotency key, invocations (which append their execution record)
// by caller and request ID; one never acknowledged counts if the final log
// holds it (completing at no known time) and is left out otherwise.
// Transaction reads that miss a transaction the log never held, failed
// reads and reads at other levels are left out.
func CheckLinearizable(ops []Op, log Log, from uint64, levels []string, timeout time.Duration) Linearizability {
	if len(ops) == 0 {
		return Linearizability{Result: porcupine.Ok}
	}
	hist, _ := logHistory(ops, log, levels)
	return Linearizability{Result: porcupine.CheckOperationsTimeout(logModel(from), hist, timeout), Ops: len(hist)}
}

// CheckLinearizableWindows is CheckLinearizable for the operations
// invoked in each window, a verdict per window (per nemesis). A window's
// model starts from a lower bound of what was committed when it began:
// from, or more if an operation that completed before it covered more
// (see covers). Leaving out the operations invoked before the window only
// removes constraints, and starting from a lower bound only allows more,
// so a window found not linearizable is a violation; one found linearizable
// may still take part in a violation across windows, which the whole
// history's check (CheckLinearizable) finds.
func CheckLinearizableWindows(ops []Op, log Log, from uint64, levels []string, windows []Window, timeout time.Duration) []Linearizability {
	out := make([]Linearizability, len(windows))
	if len(ops) == 0 {
		for i := range out {
			out[i].Result = porcupine.Ok
		}
		return out
	}
	hist, at := logHistory(ops, log, levels)
	for i, w := range windows {
		start, end := at(w.Start), at(w.Settled)
		init := from
		var part []porcupine.Operation
		for _, op := range hist {
			switch {
			case op.Return < start:
				init = max(init, covers(op.Input.(logInput)))
			case op.Call >= start && op.Call < end:
				part = append(part, op)
			}
		}
		out[i] = Linearizability{Result: porcupine.CheckOperationsTimeout(logModel(init), part, timeout), Ops: len(part)}
	}
	return out
}

// logHistory is the porcupine history CheckLinearizable checks, with
// open writes closed (closeOpen), and the clock it is timed by.
func logHistory(ops []Op, log Log, levels []string) ([]porcupine.Operation, func(time.Time) int64) {
	var hist []porcupine.Operation
	t0 := ops[0].Invoke
	for _, op := range ops {
		if op.Invoke.Before(t0) {
			t0 = op.Invoke
		}
	}
	at := func(t time.Time) int64 { return int64(t.Sub(t0)) }
	never := int64(math.MaxInt64)
	inLog, byID := log.byKey(), log.byTxID()
	for _, w := range writes(ops) {
		in := logInput{kind: KindWrite, index: w.index}
		ret := never
		switch {
		case w.acked:
			ret = at(w.complete)
		case len(inLog[w.key]) > 0:
			in.index = inLog[w.key][0].Index
		default:
			continue
		}
		hist = append(hist, porcupine.Operation{Input: in, Call: at(w.invoke), Return: ret})
	}
	// An invocation appends its execution record: a write like the others.
	records := log.records("")
	for k, inv := range invocations(ops) {
		in := logInput{kind: KindWrite, index: inv.index}
		ret := never
		switch {
		case inv.acked:
			ret = at(inv.complete)
		case len(records[k]) > 0:
			in.index = records[k][0].Index
		default:
			continue
		}
		hist = append(hist, porcupine.Operation{Input: in, Call: at(inv.invoke), Return: ret})
	}
	for _, op := range ops {
		if op.Outcome != OK || op.Kind == KindWrite || op.Kind == KindInvoke || !slices.Contains(levels, op.Level) {
			continue
		}
		in := logInput{kind: op.Kind}
		switch {
		case op.Kind == KindReadHead:
			in.size = op.Head.LogSize
		case op.Found:
			in.found, in.index = true, op.Index
		default:
			e, ok := byID[op.TxID]
			if !ok {
				continue
			}
			in.index = e.Index
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: in, Call: at(op.Invoke), Return: at(op.Complete)})
	}
	closeOpen(hist)
	return hist, at
}

// covers is the log size an operation leaves behind at least: after it,
// no write at a lower index can take effect.
func covers(in logInput) uint64 {
	switch {
	case in.kind == KindReadHead:
		return in.size
	case in.kind == KindWrite || in.found:
		return in.index + 1
	}
	return 0
}

// closeOpen gives each write that never completed (Return "never") the
// earliest completion of an operation that covers its index: the model
// must place the write before that operation in any linearization, so
// the verdict is the same, but porcupine no longer carries the write as
// open through the rest of the history (on long histories that cost it
// gigabytes).
func closeOpen(hist []porcupine.Operation) {
	type done struct {
		cover uint64
		ret   int64
	}
	var ds []done
	for _, op := range hist {
		if op.Return != math.MaxInt64 {
			ds = append(ds, done{covers(op.Input.(logInput)), op.Return})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].cover < ds[j].cover })
	// earliest[i] is the earliest completion among ds[i:].
	earliest := make([]int64, len(ds)+1)
	earliest[len(ds)] = math.MaxInt64
	for i := len(ds) - 1; i >= 0; i-- {
		earliest[i] = min(earliest[i+1], ds[i].ret)
	}
	for i, op := range hist {
		if op.Return != math.MaxInt64 {
			continue
		}
		idx := op.Input.(logInput).index
		k := sort.Search(len(ds), func(k int) bool { return ds[k].cover > idx })
		if e := earliest[k]; e > op.Call {
			hist[i].Return = e
		}
	}
}
