package faults

import (
	"fmt"
	"sort"
	"sync"
)

// Durability is what CheckDurability found.
type Durability struct {
	// Writes counts distinct idempotency keys; Acked those with at least
	// one acknowledged attempt.
	Writes, Acked int
	// Lost: acknowledged but not in the log. Duplicated: in the log more
	// than once. Misplaced: not at the position a receipt named.
	// BadProof: the inclusion proof did not verify.
	Lost, Duplicated, Misplaced, BadProof int
	// UnknownPresent and UnknownAbsent split the writes no attempt of
	// which was acknowledged by whether they committed.
	UnknownPresent, UnknownAbsent int
	// Problems describes each violation, one line each.
	Problems []string
	// LostKeys and DuplicatedKeys name the writes lost or duplicated.
	LostKeys, DuplicatedKeys []string
}

// OK reports whether no violation was found.
func (d Durability) OK() bool { return len(d.Problems) == 0 }

// CheckDurability holds the writes of ops against the final log: every
// acknowledged write is in it exactly once, at the index every receipt
// for it named, and (if verify is not nil) verify accepts its entry's
// inclusion proof; a write whose outcome is unknown is there at most
// once; a write that failed definitely is not there. verify is called
// from several goroutines at once (proofWorkers).
func CheckDurability(ops []Op, log Log, verify func(Entry) error) Durability {
	var d Durability
	inLog := log.byKey()
	ws := writes(ops)
	keys := make([]string, 0, len(ws))
	for k := range ws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var proved map[uint64]error
	if verify != nil {
		var acked []Entry
		for _, k := range keys {
			if es := inLog[k]; ws[k].acked && len(es) > 0 {
				acked = append(acked, es[0])
			}
		}
		proved = verifyAll(acked, verify)
	}
	bad := func(counter *int, format string, args ...any) {
		*counter++
		d.Problems = append(d.Problems, fmt.Sprintf(format, args...))
	}
	var failedCommitted int
	for _, k := range keys {
		w, es := ws[k], inLog[k]
		d.Writes++
		if len(es) > 1 {
			bad(&d.Duplicated, "write %q is in the log %d times (indices %v)", k, len(es), indices(es))
			d.DuplicatedKeys = append(d.DuplicatedKeys, k)
		}
		switch {
		case w.acked:
			d.Acked++
			if len(es) == 0 {
				bad(&d.Lost, "acknowledged write %q (index %d) is not in the log", k, w.index)
				d.LostKeys = append(d.LostKeys, k)
				continue
			}
			for i := range w.indices {
				if i != es[0].Index {
					bad(&d.Misplaced, "write %q acknowledged at index %d is at index %d", k, i, es[0].Index)
				}
			}
			if verify != nil {
				if err := proved[es[0].Index]; err != nil {
					bad(&d.BadProof, "write %q at index %d: proof: %v", k, es[0].Index, err)
				}
			}
		case w.failed && len(es) > 0:
			bad(&failedCommitted, "write %q failed definitely but is in the log at index %d", k, es[0].Index)
		case len(es) > 0:
			d.UnknownPresent++
		default:
			d.UnknownAbsent++
		}
	}
	return d
}

// proofWorkers is how many proofs verifyAll checks at once: each is a
// request to a node, so most of a check's time is waiting.
const proofWorkers = 8

// verifyAll calls verify on every entry, proofWorkers at a time, and
// returns the errors by entry index (nil for an entry verify accepted).
func verifyAll(es []Entry, verify func(Entry) error) map[uint64]error {
	errs := make([]error, len(es))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(proofWorkers, len(es)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = verify(es[i])
			}
		}()
	}
	for i := range es {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make(map[uint64]error, len(es))
	for i, e := range es {
		out[e.Index] = errs[i]
	}
	return out
}

func indices(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Index
	}
	return out
}
