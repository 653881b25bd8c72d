package faults

import (
	"fmt"
	"sort"
)

// CheckReads checks what linearizability cannot, since stale reads are
// allowed to lag: a transaction read found, at any level, is in the final
// log at the index it was found at (no read shows an uncommitted or
// misplaced transaction), and the heads one node serves at stale level
// never go backwards: a read that starts after another on the same node
// finished sees at least as long a log.
func CheckReads(ops []Op, log Log) []string {
	var problems []string
	byID := log.byTxID()
	perNode := map[string][]Op{}
	for _, op := range ops {
		if op.Outcome != OK {
			continue
		}
		switch op.Kind {
		case KindReadTx:
			if !op.Found {
				continue
			}
			e, ok := byID[op.TxID]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s read on %s found %.16s, which never committed", op.Level, op.Node, op.TxID))
			case e.Index != op.Index:
				problems = append(problems, fmt.Sprintf("%s read on %s found %.16s at index %d; it is at %d", op.Level, op.Node, op.TxID, op.Index, e.Index))
			}
		case KindReadHead:
			if op.Level == Stale {
				perNode[op.Node] = append(perNode[op.Node], op)
			}
		}
	}
	nodes := make([]string, 0, len(perNode))
	for n := range perNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		problems = append(problems, monotonic(n, perNode[n])...)
	}
	return problems
}

// monotonic flags a head read that saw a shorter log than one that
// completed on the same node before it began.
func monotonic(node string, reads []Op) []string {
	byComplete := append([]Op(nil), reads...)
	sort.Slice(byComplete, func(i, j int) bool { return byComplete[i].Complete.Before(byComplete[j].Complete) })
	byInvoke := append([]Op(nil), reads...)
	sort.Slice(byInvoke, func(i, j int) bool { return byInvoke[i].Invoke.Before(byInvoke[j].Invoke) })
	var (
		problems []string
		best     Op
		seen     bool
		next     int
	)
	for _, r := range byInvoke {
		for next < len(byComplete) && byComplete[next].Complete.Before(r.Invoke) {
			if c := byComplete[next]; !seen || c.Head.LogSize > best.Head.LogSize {
				best, seen = c, true
			}
			next++
		}
		if seen && r.Head.LogSize < best.Head.LogSize {
			problems = append(problems, fmt.Sprintf("stale reads on %s went backwards: log size %d, then %d", node, best.Head.LogSize, r.Head.LogSize))
		}
	}
	return problems
}
