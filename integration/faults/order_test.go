package faults

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestOrderAgreesWithPorcupine: order's verdict is porcupine's on random
// histories of the log model — every kind of operation, overlapping in
// every way, writes that never returned, models starting from 0 or more —
// and both verdicts come up often, so neither side is met by default.
func TestOrderAgreesWithPorcupine(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 2026))
	verdicts := map[bool]int{}
	const runs = 6000
	for i := range runs {
		var (
			hist []porcupine.Operation
			from uint64
		)
		if i%2 == 0 {
			hist, from = randomHistory(rng, 1+rng.IntN(8))
		} else {
			hist, from = executedHistory(rng, 1+rng.IntN(40), true)
		}
		want := porcupine.CheckOperationsTimeout(logModel(from), hist, 10*time.Second)
		if want == porcupine.Unknown {
			continue
		}
		got, why := order(hist, from)
		if got != (want == porcupine.Ok) {
			t.Fatalf("history %d (from %d): order says %v (%s), porcupine %s:\n%s", i, from, got, why, want, describeAll(hist))
		}
		if !got && why == "" {
			t.Fatalf("history %d: not linearizable, but order says not why", i)
		}
		verdicts[got]++
	}
	if verdicts[true] < runs/5 || verdicts[false] < runs/5 {
		t.Fatalf("verdicts %v of %d histories: too few of one kind to compare", verdicts, runs)
	}
	t.Logf("verdicts of %d histories: %d linearizable, %d not", runs, verdicts[true], verdicts[false])
}

// randomHistory is n operations drawn at random: mostly not linearizable.
func randomHistory(rng *rand.Rand, n int) ([]porcupine.Operation, uint64) {
	var hist []porcupine.Operation
	for range n {
		call := rng.Int64N(20)
		ret := call + rng.Int64N(8)
		if rng.IntN(10) == 0 {
			ret = math.MaxInt64
		}
		hist = append(hist, porcupine.Operation{ClientId: len(hist), Input: randomInput(rng, uint64(rng.IntN(5))), Call: call, Return: ret})
	}
	return hist, uint64(rng.IntN(2))
}

// randomInput is an operation of any kind around log size n.
func randomInput(rng *rand.Rand, n uint64) logInput {
	i := n + uint64(rng.IntN(3))
	switch rng.IntN(4) {
	case 0:
		return logInput{kind: KindWrite, index: i}
	case 1:
		return logInput{kind: KindReadHead, size: i}
	case 2:
		return logInput{kind: KindReadTx, found: true, index: uint64(rng.IntN(int(i) + 1))}
	}
	return logInput{kind: KindReadTx, index: i}
}

// executedHistory is n operations of a log that really ran them (each at
// a point inside its interval); with perturb, half the time one operation
// is then changed at random: linearizable or not, near the edge.
func executedHistory(rng *rand.Rand, n int, perturb bool) ([]porcupine.Operation, uint64) {
	from := uint64(rng.IntN(3))
	points := make([]int64, n)
	for i := range points {
		points[i] = rng.Int64N(int64(10 * n))
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	state := from
	var hist []porcupine.Operation
	for _, p := range points {
		var in logInput
		switch rng.IntN(4) {
		case 0:
			in = logInput{kind: KindWrite, index: state + uint64(rng.IntN(2))}
		case 1:
			in = logInput{kind: KindReadHead, size: state + uint64(rng.IntN(2))}
		case 2:
			in = logInput{kind: KindReadTx, found: true, index: uint64(rng.IntN(int(state) + 2))}
		default:
			in = logInput{kind: KindReadTx, index: state + uint64(rng.IntN(2))}
		}
		state = max(state, covers(in))
		ret := p + rng.Int64N(15)
		if in.kind == KindWrite && rng.IntN(8) == 0 {
			ret = math.MaxInt64
		}
		hist = append(hist, porcupine.Operation{ClientId: len(hist), Input: in, Call: p - rng.Int64N(15), Return: ret})
	}
	if perturb && rng.IntN(2) == 0 {
		k := rng.IntN(n)
		hist[k].Input = randomInput(rng, hist[k].Input.(logInput).index)
	}
	return hist, from
}

func describeAll(hist []porcupine.Operation) string {
	var s string
	for _, op := range hist {
		s += fmt.Sprintf("%s [%d, %d]\n", describe(op), op.Call, op.Return)
	}
	return s
}

// TestOrderIsQuickOnLongHistories: a history of 100,000 operations, far
// past what porcupine searches in memory, is decided in seconds: Ok as
// it ran, Illegal with one stale head read added at its end.
func TestOrderIsQuickOnLongHistories(t *testing.T) {
	hist, from := executedHistory(rand.New(rand.NewPCG(7, 7)), 100_000, false)
	start := time.Now()
	if ok, why := order(hist, from); !ok {
		t.Fatalf("an executed history is not linearizable: %s", why)
	}
	var last int64
	for _, op := range hist {
		if op.Return != math.MaxInt64 {
			last = max(last, op.Return)
		}
	}
	stale := porcupine.Operation{ClientId: -1, Input: logInput{kind: KindReadHead, size: from}, Call: last + 1, Return: last + 2}
	ok, why := order(append(hist, stale), from)
	if ok {
		t.Fatal("a head read of the initial log after every operation returned is accepted")
	}
	t.Logf("two histories of 100,000 operations decided in %v; the stale one: %s", time.Since(start).Round(time.Millisecond), why)
}

// TestSearchStopsAtItsMemoryBudget: a history porcupine can only refute
// by visiting every subset of 40 concurrent reads (a write, then a head
// read that misses it, all while the reads are open) grows its cache
// without end; the search stops once the heap has grown by its budget,
// Unknown, and order refutes the history at once.
func TestSearchStopsAtItsMemoryBudget(t *testing.T) {
	var hist []porcupine.Operation
	for i := range 40 {
		hist = append(hist, porcupine.Operation{ClientId: i, Input: logInput{kind: KindReadTx, index: 100}, Call: int64(i), Return: 1000})
	}
	hist = append(hist,
		porcupine.Operation{ClientId: 40, Input: logInput{kind: KindWrite, index: 0}, Call: 50, Return: 60},
		porcupine.Operation{ClientId: 41, Input: logInput{kind: KindReadHead, size: 0}, Call: 70, Return: 80})
	start := time.Now()
	v := search(hist, 0, Budget{Time: time.Minute, Memory: 16 << 20})
	if v.Result != porcupine.Unknown || !strings.Contains(v.Why, "grew the heap past 16 MiB") {
		t.Fatalf("search: %+v, want Unknown for its memory budget", v)
	}
	t.Logf("search stopped after %v: %s", time.Since(start).Round(time.Millisecond), v.Why)
	if ok, why := order(hist, 0); ok || !strings.Contains(why, `"head -> 0"`) {
		t.Fatalf("order: %v, %q; want the head read named", ok, why)
	}
}
