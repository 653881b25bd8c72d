package faults

import (
	"fmt"
	"sort"
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
// once; a write that failed definitely is not there.
func CheckDurability(ops []Op, log Log, verify func(Entry) error) Durability {
	var d Durability
	inLog := log.byKey()
	ws := writes(ops)
	keys := make([]string, 0, len(ws))
	for k := range ws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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
				if err := verify(es[0]); err != nil {
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

func indices(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Index
	}
	return out
}
