package faults

import (
	"container/heap"
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// bound is the largest log size an operation can take effect at.
func bound(in logInput) uint64 {
	switch {
	case in.kind == KindReadHead:
		return in.size
	case in.kind == KindWrite:
		return in.index
	case in.found:
		return math.MaxUint64
	}
	return in.index // a transaction read that missed
}

// order decides whether hist, a history of logModel(from), is
// linearizable, exactly, in O(n log n) time and O(n) memory, where
// porcupine's search keeps a bitset of the whole history per visited
// state: memory quadratic in the history at the least, which for a round
// of ~60,000 operations came to tens of gigabytes under -race.
//
// Every step of the model is "n := max(n, covers(op))", allowed only
// while n <= bound(op). So the state after a set of operations is
// max(from, their covers) whatever their order, and an order is a
// linearization exactly when it keeps real time (an operation that
// returned before another was called comes first) and puts each
// operation o before every other o' with covers(o') > bound(o). The
// history is linearizable if and only if no bound lies below from and
// this precedence graph has no cycle. order decides that by removing,
// one at a time, an operation with nothing left before it (Kahn's
// algorithm) over the graph kept implicit: o has nothing left before it
// when no remaining operation returned before o was called and covers(o)
// is at most the least bound of the other remaining operations. Among
// the operations real time allows next, only the one that covers least
// and the one with the least bound can qualify, so each removal looks at
// two. TestOrderAgreesWithPorcupine holds its verdicts against
// porcupine's on thousands of random histories.
//
// If hist is not linearizable, why names operations that cannot be put
// in any order: the remaining operation that covers least among those
// real time lets come next, and one that must come before it but cannot.
func order(hist []porcupine.Operation, from uint64) (ok bool, why string) {
	n := len(hist)
	b, c := make([]uint64, n), make([]uint64, n)
	for i, op := range hist {
		if op.Return < op.Call {
			return false, fmt.Sprintf("%s returned before it was called", describe(op))
		}
		in := op.Input.(logInput)
		b[i], c[i] = bound(in), covers(in)
		if b[i] < from {
			return false, fmt.Sprintf("%s needs at most %d transactions committed, but %d were when the history began", describe(hist[i]), b[i], from)
		}
	}
	byCall := sortedBy(n, func(i, j int) bool { return hist[i].Call < hist[j].Call })
	byBound := sortedBy(n, func(i, j int) bool { return b[i] < b[j] })
	done := make([]bool, n)
	returns := &opHeap{less: func(i, j int) bool { return hist[i].Return < hist[j].Return }}
	for i := range n {
		returns.ids = append(returns.ids, i)
	}
	heap.Init(returns)
	ready := &opHeap{less: func(i, j int) bool { return c[i] < c[j] }} // called before any remaining returned
	inReady := make([]bool, n)
	// first and second are the positions in byBound of the two remaining
	// operations with the least bounds; both only move forward.
	first, second, next := 0, 1, 0
	for left := n; left > 0; left-- {
		returns.dropDone(done)
		for next < n && hist[byCall[next]].Call <= hist[returns.top()].Return {
			heap.Push(ready, byCall[next])
			inReady[byCall[next]] = true
			next++
		}
		for done[byBound[first]] {
			first++
		}
		second = max(second, first+1)
		for second < n && done[byBound[second]] {
			second++
		}
		// leastOther is the least bound of the remaining operations but i.
		leastOther := func(i int) uint64 {
			switch {
			case i != byBound[first]:
				return b[byBound[first]]
			case second < n:
				return b[byBound[second]]
			}
			return math.MaxUint64
		}
		ready.dropDone(done)
		pick := -1
		if top := ready.top(); c[top] <= leastOther(top) {
			pick = top
		} else if f := byBound[first]; inReady[f] && c[f] <= leastOther(f) {
			pick = f
		}
		if pick < 0 {
			top, f := ready.top(), byBound[first]
			if f == top && second < n {
				f = byBound[second]
			}
			return false, fmt.Sprintf("%d operations cannot be ordered: %s must come after %s, which needs at most %d transactions committed and cannot come first",
				left, describe(hist[top]), describe(hist[f]), b[f])
		}
		done[pick] = true
	}
	return true, ""
}

// describe names an operation of the log model with its times.
func describe(op porcupine.Operation) string {
	ret := "never"
	if op.Return != math.MaxInt64 {
		ret = fmt.Sprintf("%.3f s", float64(op.Return)/1e9)
	}
	return fmt.Sprintf("%q (client %d, called %.3f s, returned %s)", logModel(0).DescribeOperation(op.Input, nil), op.ClientId, float64(op.Call)/1e9, ret)
}

// sortedBy is 0..n-1 sorted by less.
func sortedBy(n int, less func(i, j int) bool) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(x, y int) bool { return less(ids[x], ids[y]) })
	return ids
}

// opHeap is a min-heap of operation numbers; removed operations are
// dropped lazily, when they reach the top.
type opHeap struct {
	ids  []int
	less func(i, j int) bool
}

func (h *opHeap) Len() int           { return len(h.ids) }
func (h *opHeap) Less(i, j int) bool { return h.less(h.ids[i], h.ids[j]) }
func (h *opHeap) Swap(i, j int)      { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *opHeap) Push(x any)         { h.ids = append(h.ids, x.(int)) }
func (h *opHeap) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}

// top is the least operation; the heap must not be empty.
func (h *opHeap) top() int { return h.ids[0] }

// dropDone pops the operations already ordered off the top.
func (h *opHeap) dropDone(done []bool) {
	for len(h.ids) > 0 && done[h.ids[0]] {
		heap.Pop(h)
	}
}
