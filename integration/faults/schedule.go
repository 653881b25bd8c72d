package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Step is one fault of a schedule: a nemesis held for a while, on one
// group of the cluster.
type Step struct {
	Nemesis Nemesis
	// Hold is how long the fault lasts before it heals.
	Hold time.Duration
	// Group is the group the nemesis acts on (its view, Cluster.Groups).
	Group int
}

// Window is when a step ran: from injecting the fault to the cluster
// being healthy again after the heal (plus a short settling time).
type Window struct {
	// Name is the nemesis's, with its group's number on a cluster of
	// several groups.
	Name string
	// Group is the group the step's nemesis acted on.
	Group                  int
	Start, Healed, Settled time.Time
}

// Schedule runs steps against c in order, each nemesis on its step's
// group. After each heal it waits (at most recover) for the whole cluster
// to be healthy, then lets the clients run for settle before the next
// fault. It stops at the first step that cannot start, heal, or recover,
// returning the windows run so far.
func Schedule(ctx context.Context, c *Cluster, steps []Step, rng *rand.Rand, recover, settle time.Duration, logf func(string, ...any)) ([]Window, error) {
	var out []Window
	groups := c.Groups()
	for _, s := range steps {
		if s.Group < 0 || s.Group >= len(groups) {
			return out, fmt.Errorf("faults: %s: no group %d in a cluster of %d", s.Nemesis.Name, s.Group, len(groups))
		}
		w := Window{Name: s.Nemesis.Name, Group: s.Group, Start: time.Now()}
		if len(groups) > 1 {
			w.Name = fmt.Sprintf("%s (group %d)", s.Nemesis.Name, s.Group)
		}
		heal, err := s.Nemesis.Start(ctx, groups[s.Group], rng)
		if err != nil {
			return out, fmt.Errorf("faults: start %s: %w", w.Name, err)
		}
		logf("%s: injected, holding %v", w.Name, s.Hold)
		time.Sleep(s.Hold) // the fault's duration: nothing to wait for
		if err := heal(); err != nil {
			return out, fmt.Errorf("faults: heal %s: %w", w.Name, err)
		}
		w.Healed = time.Now()
		if err := c.WaitHealthy(ctx, recover); err != nil {
			return append(out, w), fmt.Errorf("faults: after %s: %w", w.Name, err)
		}
		logf("%s: healed; healthy again after %v", w.Name, time.Since(w.Healed).Round(time.Millisecond))
		time.Sleep(settle) // clients run on a healthy cluster before the next fault
		w.Settled = time.Now()
		out = append(out, w)
	}
	return out, nil
}

// RandomSteps draws k steps: a nemesis of All, or two of them composed,
// each held between minHold and maxHold, on one of groups groups.
func RandomSteps(rng *rand.Rand, groups, k int, minHold, maxHold time.Duration) []Step {
	steps := make([]Step, k)
	for i := range steps {
		n := All[rng.IntN(len(All))]
		if rng.IntN(3) == 0 {
			m := All[rng.IntN(len(All))]
			if m.Name != n.Name {
				n = Compose(n, m)
			}
		}
		hold := minHold + time.Duration(rng.Int64N(int64(maxHold-minHold)+1))
		steps[i] = Step{Nemesis: n, Hold: hold.Round(100 * time.Millisecond)}
		if groups > 1 { // one group draws nothing more: its seeds replay as before
			steps[i].Group = rng.IntN(groups)
		}
	}
	return steps
}

// Row is one line of a run's report.
type Row struct {
	Name                         string
	Ops, Acked, Lost, Duplicated int
	LongestUnavailable           time.Duration
	// Linearizable is the window's own verdict (CheckLinearizableWindows),
	// "" if not checked.
	Linearizable string
}

// Rows summarises each window of a history: operations invoked in it,
// writes acknowledged in it, writes invoked in it that were lost or
// duplicated (per d), and the longest time without an acknowledged write.
func Rows(ops []Op, windows []Window, d Durability) []Row {
	first := map[string]time.Time{}
	for _, op := range ops {
		if op.Kind == KindWrite {
			if t, ok := first[op.Key]; !ok || op.Invoke.Before(t) {
				first[op.Key] = op.Invoke
			}
		}
	}
	in := func(t time.Time, w Window) bool { return !t.Before(w.Start) && t.Before(w.Settled) }
	count := func(keys []string, w Window) int {
		c := 0
		for _, k := range keys {
			if in(first[k], w) {
				c++
			}
		}
		return c
	}
	var rows []Row
	for _, w := range windows {
		r := Row{Name: w.Name, Lost: count(d.LostKeys, w), Duplicated: count(d.DuplicatedKeys, w)}
		acks := []time.Time{w.Start}
		for _, op := range ops {
			if in(op.Invoke, w) {
				r.Ops++
			}
			if op.Kind == KindWrite && op.Outcome == OK && in(op.Complete, w) {
				r.Acked++
				acks = append(acks, op.Complete)
			}
		}
		acks = append(acks, w.Settled)
		sort.Slice(acks, func(i, j int) bool { return acks[i].Before(acks[j]) })
		for i := 1; i < len(acks); i++ {
			r.LongestUnavailable = max(r.LongestUnavailable, acks[i].Sub(acks[i-1]))
		}
		rows = append(rows, r)
	}
	return rows
}

// Table renders rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| nemesis | ops | acked | lost | duplicated | longest unavailability | linearizable |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.1f s | %s |\n", r.Name, r.Ops, r.Acked, r.Lost, r.Duplicated, r.LongestUnavailable.Seconds(), r.Linearizable)
	}
	return b.String()
}
