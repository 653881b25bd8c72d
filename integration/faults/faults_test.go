package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// run is one harness run: three voters in their own namespaces (or
// QLEDGER_FAULTS_VOTERS), in groups groups (0: QLEDGER_FAULTS_GROUPS, or
// 1), clients writing, reading and invoking in every group throughout,
// the steps that schedule draws, then every checker over each group's
// history.
func run(t *testing.T, name string, groups int, schedule func(rng *rand.Rand, groups int) []Step, torture time.Duration) {
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

	voters := envChoice(t, "QLEDGER_FAULTS_VOTERS", 3, 3, 5)
	if voters != 3 {
		replay = fmt.Sprintf("QLEDGER_FAULTS_VOTERS=%d %s", voters, replay)
	}
	if groups == 0 {
		if groups = envChoice(t, "QLEDGER_FAULTS_GROUPS", 1, 1, 2); groups != 1 {
			replay = fmt.Sprintf("QLEDGER_FAULTS_GROUPS=%d %s", groups, replay)
		}
	}
	t.Logf("%d group(s) of %d voters; replay: %s", groups, voters, replay)
	c := startHealthyClusterOf(t, voters, groups)
	deployEcho(t, c)
	ctx := context.Background()

	// Rounds: clients run through a round's steps, stop, and the round's
	// history is checked against the log then. A long run is many rounds,
	// so no history (and no porcupine search of a window) grows without
	// end; a round's model starts from the log size the previous one
	// ended at.
	from := make([]uint64, groups)
	start := time.Now()
	for round := 0; ; round++ {
		ws := make([]*Workload, groups)
		var running sync.WaitGroup
		wctx, stop := context.WithCancel(ctx)
		for g, view := range c.Groups() {
			ws[g] = newWorkload(c, fmt.Sprintf("fw%d-%d", seed, round))
			if groups > 1 {
				ws[g].Prefix += fmt.Sprintf("-g%d", g)
				ws[g].Group, ws[g].Replicas = &view.ID, view.Nodes
			}
			running.Add(1)
			go func() { defer running.Done(); ws[g].Run(wctx, c.Nodes, seed+uint64(round)+uint64(g)<<32) }()
		}
		windows, err := Schedule(ctx, c, schedule(rng, groups), rng, 2*time.Minute, 2*time.Second, t.Logf)
		stop()
		running.Wait()
		if err != nil {
			t.Fatalf("round %d: %v (replay: %s)", round, err, replay)
		}
		if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		rows := make([][]Row, groups)
		for g, view := range c.Groups() {
			label := fmt.Sprintf("round %d", round)
			if groups > 1 {
				label += fmt.Sprintf(", group %d", g)
			}
			from[g], rows[g] = check(t, view, ws[g], windows, from[g], label, replay)
		}
		if problems := independence(windows, rows); len(problems) > 0 {
			t.Errorf("round %d (replay: %s):\n%s", round, replay, strings.Join(problems, "\n"))
		}
		if torture == 0 || time.Since(start) >= torture || t.Failed() {
			return
		}
	}
}

// envChoice is the integer in the environment variable name, one of
// allowed, or def if it is unset.
func envChoice(t *testing.T, name string, def int, allowed ...int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || !slices.Contains(allowed, n) {
		t.Fatalf("%s=%q: want one of %v", name, v, allowed)
	}
	return n
}

// independence checks that while a step's nemesis held one group, every
// other group went on acknowledging writes: rows[g][i] is group g's row
// for windows[i].
func independence(windows []Window, rows [][]Row) []string {
	var problems []string
	for i, w := range windows {
		for g := range rows {
			if g != w.Group && rows[g][i].Acked == 0 {
				problems = append(problems, fmt.Sprintf("group %d acknowledged no write while %s (step %d) held group %d", g, w.Name, i, w.Group))
			}
		}
	}
	return problems
}

// check runs every checker over one round of w, the workload of c's
// group (a view, or a cluster of one group), which began with a committed
// log of size from; it reports the round and returns the log size it
// ended with and the round's rows. The cluster must be healthy.
func check(t *testing.T, c *Cluster, w *Workload, windows []Window, from uint64, round, replay string) (uint64, []Row) {
	ctx := context.Background()
	ops := w.History.Ops()
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
	fmt.Fprintf(&b, "linearizability (exact, %d operations): %s (%s); heads read %d (%d signed, %d of the empty chain), chain safety problems %d; read problems %d\n",
		lin.Ops, lin.Result, perLevel, chain.Heads, chain.Signed, chain.Empty, len(chain.Problems), len(reads))
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
	return log.Size, rows
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
	run(t, "TestFaults", 0, func(rng *rand.Rand, groups int) []Step {
		var steps []Step
		for i, n := range All {
			steps = append(steps, Step{Nemesis: n, Hold: 4 * time.Second, Group: i % groups})
		}
		steps = append(steps, Step{Nemesis: Compose(Halves, LeaveOne), Hold: 4 * time.Second})
		return append(steps, RandomSteps(rng, groups, 1, 2*time.Second, 5*time.Second)...)
	}, 0)
}

// TestTwoGroups is the short schedule of two groups of three voters:
// faults on one group's leader while the other group must go on
// committing, and every checker over each group's history.
func TestTwoGroups(t *testing.T) {
	run(t, "TestTwoGroups", 2, func(*rand.Rand, int) []Step {
		return []Step{
			{Nemesis: IsolateLeader, Hold: 4 * time.Second, Group: 0},
			{Nemesis: PauseLeader, Hold: 4 * time.Second, Group: 1},
		}
	}, 0)
}

// TestTorture runs random schedules for QLEDGER_TORTURE (a duration, e.g.
// 10m); `make torture` sets it. Without it the test skips.
func TestTorture(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("QLEDGER_TORTURE"))
	if err != nil || d <= 0 {
		t.Skip("set QLEDGER_TORTURE=10m (make torture) to run long random schedules")
	}
	run(t, "TestTorture", 0, func(rng *rand.Rand, groups int) []Step {
		return RandomSteps(rng, groups, 6, 2*time.Second, 10*time.Second)
	}, d)
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

// TestIndependence: a step on one group in whose window another group
// acknowledged no write is flagged; the group the step acted on may
// acknowledge none.
func TestIndependence(t *testing.T) {
	ws := []Window{{Name: "isolate-leader (group 0)", Group: 0}, {Name: "pause-leader (group 1)", Group: 1}}
	if p := independence(ws, [][]Row{{{Acked: 0}, {Acked: 5}}, {{Acked: 3}, {Acked: 0}}}); len(p) != 0 {
		t.Fatalf("flagged a run in which the other group always committed: %v", p)
	}
	p := independence(ws, [][]Row{{{Acked: 0}, {Acked: 0}}, {{Acked: 3}, {Acked: 0}}})
	if len(p) != 1 || p[0] != "group 0 acknowledged no write while pause-leader (group 1) (step 1) held group 1" {
		t.Fatalf("got %q, want group 0 flagged for step 1", p)
	}
}
