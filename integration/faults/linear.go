package faults

import (
	"fmt"
	"math"
	"runtime/metrics"
	"slices"
	"sort"
	"sync/atomic"
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

// Linearizability is a linearizability verdict.
type Linearizability struct {
	// Result is the verdict: Ok, Illegal, or Unknown if a porcupine
	// search ran out of its Budget.
	Result porcupine.CheckResult
	// Ops counts the operations checked.
	Ops int
	// Why explains a verdict other than Ok.
	Why string
}

// CheckLinearizable decides whether the writes and the reads at the
// given levels (linearizable and default: the docs promise both are
// linearizable) form a history of one append-only log that held from
// transactions when the history began. Writes are folded
// by idempotency key, invocations (which append their execution record)
// by caller and request ID; one never acknowledged counts if the final log
// holds it (completing at no known time) and is left out otherwise.
// Transaction reads that miss a transaction the log never held, failed
// reads and reads at other levels are left out.
//
// The verdict is exact and never Unknown: the model allows a check in
// O(n log n) time and O(n) memory (see order), where porcupine's search
// needs memory quadratic in the history at the least. Porcupine checks
// the same model per window (CheckLinearizableWindows).
func CheckLinearizable(ops []Op, log Log, from uint64, levels []string) Linearizability {
	if len(ops) == 0 {
		return Linearizability{Result: porcupine.Ok}
	}
	hist, _ := logHistory(ops, log, levels)
	if ok, why := order(hist, from); !ok {
		return Linearizability{Result: porcupine.Illegal, Ops: len(hist), Why: why}
	}
	return Linearizability{Result: porcupine.Ok, Ops: len(hist)}
}

// Budget bounds the porcupine searches of CheckLinearizableWindows.
type Budget struct {
	// Ops: a window of more operations is searched in consecutive chunks
	// of at most Ops operations (by call time), each a sub-history of
	// its own. Porcupine's cache holds a bitset of the searched history
	// per visited state, so its memory grows with the square of a
	// history's length at the least. 0 means no chunks.
	Ops int
	// Time bounds each search (0: none).
	Time time.Duration
	// Memory bounds how far the Go heap may grow during one search
	// (0: no bound). A search past it is abandoned: Unknown.
	Memory uint64
}

// CheckLinearizableWindows asks porcupine, for the operations invoked in
// each window, whether they form a history of the log model: a verdict
// per window (per nemesis). A window's model starts from a lower bound
// of what was committed when it began: from, or more if an operation
// that completed before it covered more (see covers). A window larger
// than budget.Ops is searched in chunks, each likewise. Leaving out the
// operations invoked before a window or chunk only removes constraints,
// and starting from a lower bound only allows more, so a window found
// not linearizable is a violation; one found linearizable may still take
// part in a violation across windows or chunks, which the whole
// history's check (CheckLinearizable) finds.
func CheckLinearizableWindows(ops []Op, log Log, from uint64, levels []string, windows []Window, budget Budget) []Linearizability {
	out := make([]Linearizability, len(windows))
	if len(ops) == 0 {
		for i := range out {
			out[i].Result = porcupine.Ok
		}
		return out
	}
	hist, at := logHistory(ops, log, levels)
	lower := lowerBounds(hist, from)
	sort.SliceStable(hist, func(i, j int) bool { return hist[i].Call < hist[j].Call })
	for i, w := range windows {
		start, end := at(w.Start), at(w.Settled)
		lo := sort.Search(len(hist), func(k int) bool { return hist[k].Call >= start })
		hi := sort.Search(len(hist), func(k int) bool { return hist[k].Call >= end })
		out[i] = searchChunks(hist[lo:hi], start, lower, budget)
	}
	return out
}

// searchChunks searches part (sorted by call, none called before start)
// in chunks of at most budget.Ops operations and combines the verdicts:
// Illegal if one is, else Unknown if one is, else Ok.
func searchChunks(part []porcupine.Operation, start int64, lower func(int64) uint64, budget Budget) Linearizability {
	v := Linearizability{Result: porcupine.Ok, Ops: len(part)}
	size := budget.Ops
	if size <= 0 {
		size = len(part)
	}
	for k := 0; k < len(part); k += size {
		chunk := part[k:min(k+size, len(part))]
		if k > 0 {
			start = chunk[0].Call
		}
		r := search(chunk, lower(start), budget)
		switch {
		case r.Result == porcupine.Illegal && v.Result != porcupine.Illegal,
			r.Result == porcupine.Unknown && v.Result == porcupine.Ok:
			v.Result, v.Why = r.Result, r.Why
		}
	}
	return v
}

// lowerBounds returns a function of a time t: from, or the most that an
// operation of hist that returned before t covers, whichever is more. An
// operation called at t or later takes effect on a log at least that long.
func lowerBounds(hist []porcupine.Operation, from uint64) func(t int64) uint64 {
	byReturn := slices.Clone(hist)
	sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
	most := make([]uint64, len(byReturn)+1) // most[k]: over byReturn[:k]
	most[0] = from
	for k, op := range byReturn {
		most[k+1] = max(most[k], covers(op.Input.(logInput)))
	}
	return func(t int64) uint64 {
		return most[sort.Search(len(byReturn), func(k int) bool { return byReturn[k].Return >= t })]
	}
}

// search is one porcupine search of hist on logModel(init) within
// budget. Over its memory budget the model refuses every further step,
// which ends the search at once (porcupine has no other way to be
// stopped from outside); the verdict is then Unknown.
func search(hist []porcupine.Operation, init uint64, budget Budget) Linearizability {
	var abort atomic.Bool
	model := logModel(init)
	step := model.Step
	model.Step = func(state, input, output any) (bool, any) {
		if abort.Load() {
			return false, state
		}
		return step(state, input, output)
	}
	stop := func() {}
	if budget.Memory > 0 {
		stop = watchHeap(budget.Memory, &abort)
	}
	res := porcupine.CheckOperationsTimeout(model, hist, budget.Time)
	stop()
	v := Linearizability{Result: res, Ops: len(hist)}
	switch {
	case abort.Load():
		v.Result, v.Why = porcupine.Unknown, fmt.Sprintf("porcupine's search of %d operations grew the heap past %d MiB and was abandoned", len(hist), budget.Memory>>20)
	case res == porcupine.Unknown:
		v.Why = fmt.Sprintf("porcupine's search of %d operations ran out of its %v", len(hist), budget.Time)
	case res == porcupine.Illegal:
		v.Why = fmt.Sprintf("porcupine found no linearization of %d operations", len(hist))
	}
	return v
}

// heapObjects is the runtime metric watchHeap reads: bytes in heap
// objects, live or not yet swept.
const heapObjects = "/memory/classes/heap/objects:bytes"

// watchHeap sets abort once the Go heap has grown by more than limit
// bytes since the call; stop ends the watch.
func watchHeap(limit uint64, abort *atomic.Bool) (stop func()) {
	sample := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				metrics.Read(sample)
				if sample[0].Value.Uint64() > base+limit {
					abort.Store(true)
					return
				}
			}
		}
	}()
	return func() { close(done) }
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
