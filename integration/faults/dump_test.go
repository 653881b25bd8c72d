package faults

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestDumpedHistory runs the checkers that need no cluster over a
// history a failed run dumped (QLEDGER_FAULTS_DUMP=path, see dump), for
// study; without the variable it skips. The round's exact verdict comes
// first; QLEDGER_FAULTS_DUMP_SEARCH=<MiB> then also runs porcupine over
// the whole history, as the harness once did, within that many MiB of
// heap growth and a minute, and reports how far the heap grew.
func TestDumpedHistory(t *testing.T) {
	path := os.Getenv("QLEDGER_FAULTS_DUMP")
	if path == "" {
		t.Skip("set QLEDGER_FAULTS_DUMP to a history a failed run dumped")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Ops []Op
		Log Log
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	levels := []string{Linearizable, Default}
	start := time.Now()
	lin := CheckLinearizable(d.Ops, d.Log, 0, levels)
	t.Logf("%d operations, final log of %d transactions; exact verdict %s over %d operations in %v %s",
		len(d.Ops), d.Log.Size, lin.Result, lin.Ops, time.Since(start).Round(time.Millisecond), lin.Why)
	t.Logf("durability: %d problems; reads: %d problems", len(CheckDurability(d.Ops, d.Log, nil).Problems), len(CheckReads(d.Ops, d.Log)))
	mib, _ := strconv.ParseUint(os.Getenv("QLEDGER_FAULTS_DUMP_SEARCH"), 10, 64)
	if mib == 0 {
		return
	}
	hist, _ := logHistory(d.Ops, d.Log, levels)
	runtime.GC()
	sample := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
		}
	}()
	start = time.Now()
	v := search(hist, 0, Budget{Time: time.Minute, Memory: mib << 20})
	close(stop)
	<-sampled
	t.Logf("porcupine over the whole history (%d operations): %s after %v, heap grew by up to %d MiB %s",
		len(hist), v.Result, time.Since(start).Round(time.Millisecond), (peak-base)>>20, v.Why)
	if v.Result == porcupine.Illegal && lin.Result == porcupine.Ok {
		t.Error("porcupine and the exact check disagree")
	}
}
