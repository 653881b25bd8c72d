package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// run is one harness run: three voters in their own namespaces, clients
// writing and reading throughout, the steps that schedule(rng) draws, then
// every checker over the history.
func run(t *testing.T, name string, schedule func(*rand.Rand) []Step, torture time.Duration) {
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the fault harness must run in CI: %v", err)
		}
		t.Skipf("skipping the fault harness: %v (it needs root and `ip netns`)", err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("QLEDGER_FAULTS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("QLEDGER_FAULTS_SEED=%q: %v", s, err)
		}
	}
	replay := fmt.Sprintf("QLEDGER_FAULTS_SEED=%d go test ./integration/faults -run '^%s$' -v", seed, name)
	if torture > 0 {
		replay = fmt.Sprintf("QLEDGER_TORTURE=%v %s", torture, replay)
	}
	t.Logf("seed %d; replay: %s", seed, replay)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	voters := 3
	if v := os.Getenv("QLEDGER_FAULTS_VOTERS"); v != "" {
		var err error
		if voters, err = strconv.Atoi(v); err != nil || (voters != 3 && voters != 5) {
			t.Fatalf("QLEDGER_FAULTS_VOTERS=%q: want 3 or 5", v)
		}
		replay = fmt.Sprintf("QLEDGER_FAULTS_VOTERS=%d %s", voters, replay)
		t.Logf("%d voters; replay: %s", voters, replay)
	}
	c := startHealthyClusterOf(t, voters)
	deployEcho(t, c)
	ctx := context.Background()

	// Rounds: clients run through a round's steps, stop, and the round's
	// history is checked against the log then. A long run is many rounds,
	// so no history (and no porcupine search of a window) grows without
	// end; a round's model starts from the log size the previous one
	// ended at.
	var from uint64
	start := time.Now()
	for round := 0; ; round++ {
		w := newWorkload(c, fmt.Sprintf("fw%d-%d", seed, round))
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { w.Run(wctx, c.Nodes, seed+uint64(round)); close(done) }()
		windows, err := Schedule(ctx, c, schedule(rng), rng, 2*time.Minute, 2*time.Second, t.Logf)
		stop()
		<-done
		if err != nil {
			t.Fatalf("round %d: %v (replay: %s)", round, err, replay)
		}
		from = check(t, c, w, windows, from, fmt.Sprintf("round %d", round), replay)
		if torture == 0 || time.Since(start) >= torture || t.Failed() {
			return
		}
	}
}

// check runs every checker over one round of w, which began with a
// committed log of size from, reports it, and returns the log size it
// ended with.
func check(t *testing.T, c *Cluster, w *Workload, windows []Window, from uint64, round, replay string) uint64 {
	ctx := context.Background()
	ops := w.History.Ops()
	if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	log, head, err := c.FinalLog(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proofStart := time.Now()
	d := CheckDurability(ops, log, c.ProofChecker(ctx, ld.API, head))
	proofTime := time.Since(proofStart)
	chainStart := time.Now()
	chain := CheckChain(ops, log, c.SignatureChecker())
	chainTime := time.Since(chainStart)
	reads := CheckReads(ops, log)
	exec := CheckExecution(ops, log, w.InvokePrefix())
	both := []string{Linearizable, Default}
	linStart := time.Now()
	lin := CheckLinearizable(ops, log, from, both)
	linTime := time.Since(linStart)
	// Each level alone: a sub-history of one found linearizable is
	// linearizable too (leaving operations out only removes constraints),
	// so the check is needed, and run, only to tell which level failed.
	perLevel := "each level alone: implied"
	if lin.Result == porcupine.Illegal {
		linOnly := CheckLinearizable(ops, log, from, []string{Linearizable})
		defOnly := CheckLinearizable(ops, log, from, []string{Default})
		perLevel = fmt.Sprintf("linearizable reads alone: %s, default reads alone: %s", linOnly.Result, defOnly.Result)
	}

	rows := Rows(ops, windows, d)
	checkStart := time.Now()
	var illegal []string
	for i, v := range CheckLinearizableWindows(ops, log, from, both, windows, windowBudget) {
		rows[i].Linearizable = fmt.Sprintf("%s (%d ops)", v.Result, v.Ops)
		switch v.Result {
		case porcupine.Illegal:
			illegal = append(illegal, fmt.Sprintf("the history of %s (step %d) is not linearizable: %s", windows[i].Name, i, v.Why))
		case porcupine.Unknown:
			t.Logf("%s (step %d): %s", windows[i].Name, i, v.Why)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n", round, Table(rows))
	fmt.Fprintf(&b, "operations %d; writes %d, acknowledged %d, lost %d, duplicated %d, misplaced %d, bad proofs %d; unknown outcome: %d committed, %d not\n",
		len(ops), d.Writes, d.Acked, d.Lost, d.Duplicated, d.Misplaced, d.BadProof, d.UnknownPresent, d.UnknownAbsent)
	fmt.Fprintf(&b, "invocations %d, acknowledged %d, execution records %d (run by %d distinct executors); duplicated %d, missing %d, changed %d, never sent %d; unknown outcome: %d recorded, %d not\n",
		exec.Invocations, exec.Acked, exec.Records, exec.Executors, exec.Duplicated, exec.Missing, exec.Changed, exec.Unsent, exec.UnknownPresent, exec.UnknownAbsent)
	fmt.Fprintf(&b, "linearizability (exact, %d operations): %s (%s); heads read %d (%d signed), chain safety problems %d; read problems %d\n",
		lin.Ops, lin.Result, perLevel, chain.Heads, chain.Signed, len(chain.Problems), len(reads))
	fmt.Fprintf(&b, "final log: %d transactions in %d blocks; checks took: proofs %v, signatures %v, exact linearizability %v, per-step porcupine %v\nreplay: %s\n",
		log.Size, head.Height, proofTime.Round(time.Millisecond), chainTime.Round(time.Millisecond), linTime.Round(time.Millisecond), time.Since(checkStart).Round(time.Millisecond), replay)
	t.Log("\n" + b.String())
	if path := os.Getenv("QLEDGER_FAULTS_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "### %s (%s)\n\n%s\n", t.Name(), time.Now().UTC().Format(time.RFC3339), b.String())
			f.Close()
		}
	}
	problems := append(append(append([]string(nil), d.Problems...), chain.Problems...), reads...)
	problems = append(problems, exec.Problems...)
	problems = append(problems, serverErrors(ops)...)
	if lin.Result == porcupine.Illegal {
		problems = append(problems, "the history is not linearizable: "+lin.Why)
	}
	problems = append(problems, illegal...)
	if len(problems) > 0 {
		if path, err := dump(ops, log); err == nil {
			t.Logf("history and final log written to %s", path)
		}
		if len(problems) > 30 {
			problems = append(problems[:30], fmt.Sprintf("... and %d more", len(problems)-30))
		}
		t.Errorf("%d problems (replay: %s):\n%s", len(problems), replay, strings.Join(problems, "\n"))
	}
	if d.Acked == 0 {
		t.Error("no write was acknowledged: the run proves nothing")
	}
	if w.Invokers > 0 && exec.Acked == 0 {
		t.Error("no invocation was acknowledged: the execution check proves nothing")
	}
	return log.Size
}

// windowBudget bounds each porcupine search of a step's window. A
// search that runs out says Unknown, which the test logs and does not
// count as a failure (the round's verdict, CheckLinearizable, is exact);
// Illegal fails it. The bounds keep the test process's memory to a few
// gigabytes: a porcupine search of a whole round once took it past 23 GB
// (under -race) and the OOM killer in CI.
var windowBudget = Budget{Ops: 5000, Time: 30 * time.Second, Memory: 256 << 20}

// serverErrors lists the operations answered 500: under faults a node
// must answer 503 (or 507) and say why, never fail as if it had a bug.
func serverErrors(ops []Op) []string {
	var out []string
	for _, op := range ops {
		if op.Status == http.StatusInternalServerError {
			out = append(out, fmt.Sprintf("%s %s of %s by %s answered %d: %s", op.Kind, op.Level, op.Key, op.Node, op.Status, op.Err))
		}
	}
	return out
}

// TestFaults is the short schedule `make test` runs: every nemesis once,
// a membership change during a partition (a random voter leaves while the
// group is split in halves; after the heal it starts again and the leader
// must add it back as a voter), then one random step.
func TestFaults(t *testing.T) {
	run(t, "TestFaults", func(rng *rand.Rand) []Step {
		var steps []Step
		for _, n := range All {
			steps = append(steps, Step{Nemesis: n, Hold: 4 * time.Second})
		}
		steps = append(steps, Step{Nemesis: Compose(Halves, LeaveOne), Hold: 4 * time.Second})
		return append(steps, RandomSteps(rng, 1, 2*time.Second, 5*time.Second)...)
	}, 0)
}

// TestTorture runs random schedules for QLEDGER_TORTURE (a duration, e.g.
// 10m); `make torture` sets it. Without it the test skips.
func TestTorture(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("QLEDGER_TORTURE"))
	if err != nil || d <= 0 {
		t.Skip("set QLEDGER_TORTURE=10m (make torture) to run long random schedules")
	}
	run(t, "TestTorture", func(rng *rand.Rand) []Step { return RandomSteps(rng, 6, 2*time.Second, 10*time.Second) }, d)
}

// dump writes a failed run's history and final log for study.
func dump(ops []Op, log Log) (string, error) {
	f, err := os.CreateTemp("", "qledger-faults-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return f.Name(), json.NewEncoder(f).Encode(struct {
		Ops []Op
		Log Log
	}{ops, log})
}
