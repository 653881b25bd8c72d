package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// histTotals are the sums and counts of the process's histograms whose
// name is wanted, keyed by name plus the "phase" label (if any): a
// snapshot from the default registry, where every node registers.
type histTotals map[string]struct {
	sum   float64
	count uint64
}

// snapshotHists reads the histograms named in names, summed over nodes
// and groups; errors leave it empty (the breakdown is a note, not a
// result).
func snapshotHists(names ...string) histTotals {
	out := histTotals{}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if !contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" {
					key += "/" + l.GetValue()
				}
			}
			t := out[key]
			t.sum += m.GetHistogram().GetSampleSum()
			t.count += m.GetHistogram().GetSampleCount()
			out[key] = t
		}
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// invokeBreakdown says, from two snapshots around a run, how long each
// phase of an invocation took on the leader on average and how many
// transactions a block held.
func invokeBreakdown(before, after histTotals) string {
	var b strings.Builder
	for _, phase := range []string{"election", "execute", "commit", "total"} {
		k := "qledger_invocation_seconds/" + phase
		if n := after[k].count - before[k].count; n > 0 {
			mean := time.Duration((after[k].sum - before[k].sum) / float64(n) * float64(time.Second))
			fmt.Fprintf(&b, "%s %v, ", phase, mean.Round(10*time.Microsecond))
		}
	}
	k := "qledger_block_transactions"
	if n := after[k].count - before[k].count; n > 0 {
		fmt.Fprintf(&b, "%d blocks of %.1f transactions on average", n, (after[k].sum-before[k].sum)/float64(n))
	}
	return strings.TrimSuffix(b.String(), ", ")
}
