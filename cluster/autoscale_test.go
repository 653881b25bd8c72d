package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"qledger/chain"
	"qledger/execute"
)

// The decision rule, step by step on a scripted clock: bounds, one step
// per decision, the up and down windows, holding while not idle long
// enough, and scaling to zero after IdleToZero.
func TestScalePolicy(t *testing.T) {
	cfg := AutoscaleConfig{Min: 0, Max: 3, TargetInFlight: 2, Interval: time.Second, UpWindow: 2 * time.Second, DownWindow: 3 * time.Second, IdleToZero: 10 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	p := &scalePolicy{cfg: cfg}
	steps := []struct {
		sec      int
		exec, in int
		idleFrom int // seconds since t0 of the last activity
		want     int // Desired
	}{
		{0, 0, 9, 0, 0},   // wants 3 (capped), but the up window has only just begun
		{1, 0, 9, 1, 0},   // one second of wanting more: still within the window
		{2, 0, 9, 2, 1},   // every recommendation of the last 2 s wanted more: one step
		{3, 1, 9, 3, 2},   // one step per decision
		{4, 2, 9, 4, 3},   // reaches the maximum
		{5, 3, 50, 5, 3},  // more demand than the maximum allows: stays
		{6, 3, 0, 6, 3},   // no demand, not idle long: holds
		{15, 3, 0, 6, 3},  // idle 9 s: holds
		{16, 3, 0, 6, 3},  // idle 10 s: wants 0, but the down window has just begun
		{18, 3, 0, 6, 3},  // 2 s of wanting fewer (and the 15 s recommendation is out of the window)
		{19, 3, 0, 6, 2},  // 3 s: one step down
		{20, 2, 0, 6, 1},  // and on
		{21, 1, 2, 21, 1}, // demand again (2 in flight wants 1): no change
		{22, 1, 0, 21, 1}, // not idle long enough to shrink
		{32, 1, 0, 21, 1}, // idle 11 s: wants 0, window begins
		{35, 1, 0, 21, 0}, // down to zero
	}
	for _, s := range steps {
		now := t0.Add(time.Duration(s.sec) * time.Second)
		d := p.decide(demand{Now: now, Executors: s.exec, InFlight: s.in, LastActivity: t0.Add(time.Duration(s.idleFrom) * time.Second)})
		if d.Desired != s.want {
			t.Fatalf("t=%ds, %d executors, %d in flight: desired %d (%s), want %d", s.sec, s.exec, s.in, d.Desired, d.Reason, s.want)
		}
	}
	// Bounds are restored one step at a time, whatever the demand.
	p = &scalePolicy{cfg: AutoscaleConfig{Min: 2, Max: 3, TargetInFlight: 1, Interval: time.Second}}
	if d := p.decide(demand{Now: t0, Executors: 0, LastActivity: t0}); d.Desired != 1 {
		t.Fatalf("below the minimum: %+v", d)
	}
	if d := p.decide(demand{Now: t0, Executors: 5, InFlight: 9, LastActivity: t0}); d.Desired != 4 {
		t.Fatalf("above the maximum: %+v", d)
	}
	// Latency above the target asks for one more even when the count
	// covers the in-flight demand.
	p = &scalePolicy{cfg: AutoscaleConfig{Max: 4, TargetInFlight: 4, TargetLatency: 100 * time.Millisecond, Interval: time.Second}}
	if d := p.decide(demand{Now: t0, Executors: 1, InFlight: 2, MeanLatency: time.Second, LastActivity: t0}); d.Desired != 2 {
		t.Fatalf("latency above the target: %+v", d)
	}
	for _, bad := range []AutoscaleConfig{{Min: 2, Max: 1, TargetInFlight: 1, Interval: time.Second}, {Max: 1, Interval: time.Second}, {Max: 1, TargetInFlight: 1}} {
		if err := bad.Validate(); !errors.Is(err, ErrAutoscaleConfig) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

// TestAutoscaleBurst: a burst of invocations scales a group's executors
// from 0 up, and after idling back to 0. Every invocation is committed
// exactly once, and the voters stay the same voters throughout.
func TestAutoscaleBurst(t *testing.T) {
	l := startLocal(t, 1, 3)
	voters := append([]*Node(nil), l.Nodes...) // l.Nodes grows as executors start
	ldr := waitLeader(t, l)
	deployTiny(t, ldr, 0, "inc")
	cfg := AutoscaleConfig{Min: 0, Max: 2, TargetInFlight: 2, Interval: 200 * time.Millisecond, DownWindow: time.Second, IdleToZero: 2 * time.Second}
	for _, n := range voters {
		if err := n.Autoscale(cfg, l); err != nil {
			t.Fatal(err)
		}
		// Slow executions keep the burst in flight across decisions.
		n.SetExecHook(func(r execute.Result) execute.Result { time.Sleep(100 * time.Millisecond); return r })
	}
	if err := voters[0].Autoscale(cfg, l); !errors.Is(err, ErrAutoscaleConfig) {
		t.Fatalf("a second autoscaler: %v", err)
	}
	leaderOf := func() *Node {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, n := range voters {
				if n.IsLeader() {
					return n
				}
			}
		}
		t.Fatal("no leader for a minute")
		return nil
	}
	voterIDs := func() map[raft.ServerID]bool {
		out := map[raft.ServerID]bool{}
		for _, s := range leaderOf().raft.GetConfiguration().Configuration().Servers {
			if s.Suffrage == raft.Voter {
				out[s.ID] = true
			}
		}
		return out
	}
	before := voterIDs()
	executors := func() int { c, _ := l.Executors(context.Background(), 0); return c }
	var (
		mu       sync.Mutex
		receipts = map[chain.Hash]bool{}
		sent     int
		peak     int
	)
	burst := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A client retries with the same request ID until it
				// gets an answer (a loaded machine loses leaders); the
				// ID keeps it to one record.
				req := invokeReq(t, 0, "inc", `{"value":1}`)
				var res InvokeResult
				var err error
				for try := time.Now(); ; {
					res, err = voters[0].Invoke(context.Background(), req)
					if err == nil || time.Since(try) > time.Minute {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				defer mu.Unlock()
				sent++
				if err != nil {
					t.Errorf("invocation during the burst: %v", err)
					return
				}
				if receipts[res.Receipt.ID] {
					t.Errorf("two invocations answered with one record %s", res.Receipt.ID)
				}
				receipts[res.Receipt.ID] = true
			}()
		}
		wg.Wait()
	}
	deadline := time.Now().Add(90 * time.Second)
	for executors() < cfg.Max && time.Now().Before(deadline) && !t.Failed() {
		burst()
		peak = max(peak, executors())
	}
	if peak < 1 {
		t.Fatalf("the burst scaled nothing up: %d executors", peak)
	}
	waitUntil(t, "the executors joined the group", 60*time.Second, func() bool {
		c, _ := leaderOf().candidates()
		return len(c) >= 3+executors()
	})
	burst() // served with the executors taking part
	waitUntil(t, "scale back to zero after idling", 90*time.Second, func() bool {
		d := leaderOf().AutoscaleStatus()
		return executors() == 0 && d != nil && d.Desired == 0 && d.Executors == 0
	})
	// Exactly once: one execution record per invocation on the chain.
	ld := leaderOf()
	head, _, _ := ld.store.Head()
	records := 0
	for h := uint64(1); h <= head.Height; h++ {
		raw, err := ld.store.Block(h)
		if err != nil {
			t.Fatal(err)
		}
		b, err := chain.DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, txb := range b.Txs {
			if tx, _ := chain.DecodeTx(txb); tx.Kind == chain.TxExec {
				records++
				if !receipts[chain.TxID(txb)] {
					t.Errorf("a record at height %d answers no invocation", h)
				}
			}
		}
	}
	if records != sent || len(receipts) != sent {
		t.Fatalf("%d invocations, %d answered with distinct records, %d records on the chain", sent, len(receipts), records)
	}
	after := voterIDs()
	if len(after) != len(before) {
		t.Fatalf("voters changed: %v -> %v", before, after)
	}
	for id := range before {
		if !after[id] {
			t.Fatalf("voter %s was touched: %v -> %v", id, before, after)
		}
	}
	t.Logf("%d invocations in bursts; up to %d executors, back to 0", sent, peak)
}

// The external-scaler mode's provider counts the group's live executors
// and starts or stops nothing.
func TestExternalExecutors(t *testing.T) {
	l := startLocal(t, 1, 1)
	p := l.Nodes[0].ExternalExecutors()
	ctx := context.Background()
	if n, err := p.Executors(ctx, 0); err != nil || n != 0 {
		t.Fatalf("no executors yet: %d %v", n, err)
	}
	if _, err := l.AddNode(RoleExecutor, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the executor counted", 30*time.Second, func() bool { n, _ := p.Executors(ctx, 0); return n == 1 })
	nodes := len(l.Nodes)
	if n, err := p.SetExecutors(ctx, 0, 3); err != nil || n != 1 || len(l.Nodes) != nodes {
		t.Fatalf("SetExecutors started something: %d %v, %d nodes", n, err, len(l.Nodes))
	}
	if _, err := p.Executors(ctx, 1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("another group: %v", err)
	}
}

// failingProvider starts nothing: a cold start under the wait policy
// then waits its bound out.
type failingProvider struct{}

func (failingProvider) Executors(context.Context, int) (int, error) { return 0, nil }
func (failingProvider) SetExecutors(context.Context, int, int) (int, error) {
	return 0, errors.New("no capacity")
}

// TestColdStartPolicy: an invocation at a group with no executor is
// elected among the voters at once under the default policy; under the
// wait policy it waits until the executor the autoscaler starts at once
// (its interval is an hour, so only the cold start's kick can start it)
// is eligible and takes part in the election; and when none comes, it is
// served by the voters after the bound.
func TestColdStartPolicy(t *testing.T) {
	cases := []struct {
		name     string
		wait     time.Duration
		provider func(*Local) ExecutorProvider
		// executor: an executor took part in the election.
		executor bool
		// minLatency: the invocation waited at least this long.
		minLatency time.Duration
	}{
		{"voters", 0, func(l *Local) ExecutorProvider { return l }, false, 0},
		{"wait", 2 * time.Minute, func(l *Local) ExecutorProvider { return l }, true, 0},
		{"wait-bound", 500 * time.Millisecond, func(*Local) ExecutorProvider { return failingProvider{} }, false, 500 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := startLocal(t, 1, 3)
			voters := map[string]bool{}
			for _, n := range l.Nodes {
				voters[n.ID().String()] = true
			}
			ldr := waitLeader(t, l)
			deployTiny(t, ldr, 0, "inc")
			cfg := AutoscaleConfig{Min: 0, Max: 1, TargetInFlight: 1, Interval: time.Hour, IdleToZero: time.Hour, ColdStartWait: c.wait}
			if err := ldr.Autoscale(cfg, c.provider(l)); err != nil {
				t.Fatal(err)
			}
			var res InvokeResult
			var err error
			t0 := time.Now()
			for try := time.Now(); ; time.Sleep(100 * time.Millisecond) {
				res, err = ldr.Invoke(context.Background(), invokeReq(t, 0, "inc", `{"value":1}`))
				if err == nil || time.Since(try) > time.Minute {
					break
				}
			}
			took := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			cands := res.Record.Election.Candidates
			withExecutor := false
			for _, cd := range cands {
				withExecutor = withExecutor || !voters[cd.NodeID]
			}
			if withExecutor != c.executor {
				t.Fatalf("an executor took part: %v, want %v (%d candidates)", withExecutor, c.executor, len(cands))
			}
			if took < c.minLatency {
				t.Fatalf("the invocation took %s, less than the cold-start bound %s", took, c.minLatency)
			}
			if n, _ := l.Executors(context.Background(), 0); c.name == "voters" && n != 0 {
				t.Fatalf("the voters policy started %d executors before the autoscaler's interval", n)
			}
			t.Logf("%s: %d candidates, %s", c.name, len(cands), took.Round(time.Millisecond))
		})
	}
	if err := (AutoscaleConfig{Max: 1, TargetInFlight: 1, Interval: time.Second, ColdStartWait: -time.Second}).Validate(); !errors.Is(err, ErrAutoscaleConfig) {
		t.Fatalf("a negative cold-start wait: %v", err)
	}
}

// The CPU rule: with invocations in flight, executors whose mean CPU is
// above the target ask for one more even when the in-flight count is
// covered; below the target, with no executor answering, or with the
// target off, CPU changes nothing; and it never keeps a group from
// shrinking once it is idle.
func TestScalePolicyCPU(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := AutoscaleConfig{Max: 4, TargetInFlight: 4, TargetCPU: 0.7, Interval: time.Second, IdleToZero: 10 * time.Second}
	for _, c := range []struct {
		name       string
		cfg        AutoscaleConfig
		exec, in   int
		cpu        float64
		idle       time.Duration
		want       int
		wantReason string
	}{
		{"above the target", cfg, 1, 2, 0.9, 0, 2, "executor CPU 90 % above the target 70 %"},
		{"at the target", cfg, 1, 2, 0.7, 0, 1, ""},
		{"no executor answered", cfg, 1, 2, -1, 0, 1, ""},
		{"target off", AutoscaleConfig{Max: 4, TargetInFlight: 4, Interval: time.Second}, 1, 2, 0.99, 0, 1, ""},
		{"at the maximum", cfg, 4, 2, 0.99, 0, 4, ""},
		{"idle", cfg, 2, 0, 0.99, 20 * time.Second, 1, ""},
	} {
		p := &scalePolicy{cfg: c.cfg}
		d := p.decide(demand{Now: t0, Executors: c.exec, InFlight: c.in, ExecutorCPU: c.cpu, LastActivity: t0.Add(-c.idle)})
		if d.Desired != c.want || (c.wantReason != "" && d.Reason != c.wantReason) {
			t.Errorf("%s: desired %d (%s), want %d (%s)", c.name, d.Desired, d.Reason, c.want, c.wantReason)
		}
	}
	for _, bad := range []float64{-0.1, 1.5} {
		c := cfg
		c.TargetCPU = bad
		if err := c.Validate(); !errors.Is(err, ErrAutoscaleConfig) {
			t.Errorf("target CPU %v: %v", bad, err)
		}
	}
}

// TestExecutorCPU: the CPU sampler sees this process work, and the
// leader reads its executors' CPU through their Health answers (-1 with
// no executor).
func TestExecutorCPU(t *testing.T) {
	var s cpuSampler
	if _, ok := processCPUTime(); !ok {
		t.Skip("no process CPU time on this platform")
	}
	s.utilization()
	start, _ := processCPUTime()
	t0 := time.Now()
	for { // work until 100 ms of CPU and a full window have passed
		if used, _ := processCPUTime(); used-start >= 100*time.Millisecond && time.Since(t0) >= time.Second {
			break
		}
	}
	if u := s.utilization(); u <= 0 || u > 1 {
		t.Fatalf("utilization after 100 ms of CPU in %s: %v", time.Since(t0).Round(time.Millisecond), u)
	}
	l := startLocal(t, 1, 1)
	ldr := l.Nodes[0]
	if cpu := ldr.executorCPU(context.Background()); cpu != -1 {
		t.Fatalf("no executor, CPU %v, want -1", cpu)
	}
	if _, err := l.AddNode(RoleExecutor, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the executor answered its CPU", 60*time.Second, func() bool {
		cpu := ldr.executorCPU(context.Background())
		return cpu >= 0 && cpu <= 1
	})
}

// TestLeaveDrainsExecutions: an executor asked to leave while it runs an
// execution (held 1.5 s by a hook) leaves the configuration at once but
// returns from Leave only after the execution has ended, and the
// invocation records the executor's execution as a success.
func TestLeaveDrainsExecutions(t *testing.T) {
	l := startLocal(t, 1, 1)
	ldr := l.Nodes[0]
	deployTiny(t, ldr, 0, "inc")
	if n, err := l.SetExecutors(context.Background(), 0, 1); err != nil || n != 1 {
		t.Fatalf("SetExecutors: %d %v", n, err)
	}
	ex := l.Nodes[len(l.Nodes)-1]
	ex.SetExecHook(func(r execute.Result) execute.Result { time.Sleep(1500 * time.Millisecond); return r })
	waitUntil(t, "the executor is a candidate", 60*time.Second, func() bool { c, _ := ldr.candidates(); return len(c) == 2 })
	type answer struct {
		res InvokeResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := ldr.Invoke(context.Background(), invokeReq(t, 0, "inc", `{"value":1}`))
		done <- answer{res, err}
	}()
	waitUntil(t, "the executor runs the execution", 60*time.Second, func() bool { return ex.running.Load() > 0 })
	if err := ex.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := ex.running.Load(); n != 0 {
		t.Fatalf("Leave returned with %d executions running", n)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	ok := false
	for _, x := range a.res.Record.Executions {
		ok = ok || (x.NodeID == ex.ID().String() && x.Err == "")
	}
	if !ok || !a.res.Record.Verified {
		t.Fatalf("the leaving executor's execution is not in the record: %+v", a.res.Record.Executions)
	}
}
