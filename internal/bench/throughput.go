// Package bench measures qledger beside baselines from the same run:
// committed throughput and latency against a bare hashicorp/raft group
// (Throughput), verified invocations against the bare ledger write path
// and the WebAssembly call alone (Invoke), what mutual TLS costs (TLS),
// and membership changes with real node processes (Membership). Every
// result is printed as a ratio to its baseline; timings are never
// asserted. `qledger bench` parses flags and calls it.
//
// The bare-raft baseline lives here, not in cluster, so that the runtime
// package carries no benchmark code. It is therefore the one package
// besides cluster and fsm that imports hashicorp/raft, and only to
// measure raft alone.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"qledger/api"
	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/server"
)

// ThroughputConfig is one run of Throughput.
type ThroughputConfig struct {
	// Clients and Payloads are the concurrent clients and payload sizes
	// measured, each pair in one group against the baseline.
	Clients, Payloads []int
	// Groups are the group counts of the scaling runs (64 clients, the
	// first payload size); empty skips them.
	Groups []int
	// Replicas per group, also the baseline's.
	Replicas int
	// Duration is the measured time and Warmup the unmeasured time of
	// each run.
	Duration, Warmup time.Duration
	// HTTP also measures 64 clients through the HTTP API.
	HTTP bool
	// Markdown prints Markdown tables instead of lines.
	Markdown bool
	// MaxInflight (0: the default) and BatchDelay (negative: the default)
	// tune the ledger's block proposals.
	MaxInflight int
	BatchDelay  time.Duration
	// SkipBaseline measures the ledger only (for profiling; no ratios).
	SkipBaseline bool
	// CPUProfile, if set, is a file for a CPU profile of the whole run.
	CPUProfile string
}

// Throughput measures committed transactions per second and commit
// latency for the ledger beside a bare hashicorp/raft baseline measured
// in the same run, with the same replicas, clients and payloads. It
// prints results to out and per-run notes to log.
func Throughput(cfg ThroughputConfig, out, log io.Writer) error {
	if cfg.CPUProfile != "" {
		stop, err := startProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	dir, err := os.MkdirTemp("", "qledger-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	if cfg.MaxInflight > 0 {
		base.MaxInflight = cfg.MaxInflight
	}
	if cfg.BatchDelay >= 0 {
		base.MaxBatchDelay = cfg.BatchDelay
	}
	run := benchRun{log: log, dur: cfg.Duration, warm: cfg.Warmup, skipBaseline: cfg.SkipBaseline}
	fmt.Fprintf(out, "qledger bench: %d replicas per group, raft log fsynced on every append (the chain store is not: it is rebuilt from raft after an unclean stop), %s per run, GOMAXPROCS %d, %d CPUs\n", cfg.Replicas, cfg.Duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
	tab := newTable(out, cfg.Markdown, "system", "payload", "clients", "tx/s", "p50 ms", "p99 ms", "vs baseline tx/s", "p50 vs baseline")
	for n, m := range cfg.plan() {
		bl, err := run.baseline(fmt.Sprintf("%s/b%d", dir, n), cfg.Replicas, m.clients, m.size, base)
		if err != nil {
			return err
		}
		lg, err := run.ledger(fmt.Sprintf("%s/l%d", dir, n), m.groups, cfg.Replicas, m.clients, m.size, &base, m.viaHTTP)
		if err != nil {
			return err
		}
		tab.row("bare raft (baseline)", m.size, m.clients, bl, bl)
		tab.row(m.name, m.size, m.clients, lg, bl)
	}
	tab.print()
	return nil
}

// measurement is one ledger run, measured beside a baseline run with the
// same clients and payload size.
type measurement struct {
	name                  string
	groups, clients, size int
	viaHTTP               bool
}

// plan lists the runs: every payload size with every client count in one
// group; then, with 64 clients and the first payload size, one group
// through the HTTP API and each group count.
func (cfg ThroughputConfig) plan() []measurement {
	var ms []measurement
	for _, size := range cfg.Payloads {
		for _, c := range cfg.Clients {
			ms = append(ms, measurement{name: "qledger 1 group", groups: 1, clients: c, size: size})
		}
	}
	if len(cfg.Payloads) == 0 {
		return ms
	}
	size := cfg.Payloads[0]
	if cfg.HTTP {
		ms = append(ms, measurement{name: "qledger 1 group, HTTP API", groups: 1, clients: 64, size: size, viaHTTP: true})
	}
	for _, g := range cfg.Groups {
		ms = append(ms, measurement{name: fmt.Sprintf("qledger %d groups", g), groups: g, clients: 64, size: size})
	}
	return ms
}

// startProfile writes a CPU profile to path until the returned stop.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// unlimited lifts the per-caller limits: a benchmark is one caller
// driving the cluster as hard as it can.
func unlimited(c *api.Config) { c.RatePerCaller, c.MaxInvocationsPerCaller = 0, 0 }

type result struct {
	ops      int
	errs     int64
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the process's CPU time over the measured window (every
	// replica, client and runtime in it); 0 where it cannot be read.
	cpu time.Duration
}

// cpuPerOp is the process's CPU time per measured operation; 0 if unknown.
func (r result) cpuPerOp() time.Duration {
	if r.ops == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ops)
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

type benchRun struct {
	log          io.Writer // where runs report their blocks
	dur, warm    time.Duration
	skipBaseline bool
}

// drive runs clients goroutines calling op until the run ends and returns
// the measured part. op gets the client number and a sequence number.
func (b benchRun) drive(clients int, op func(c, i int) error) result {
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		errs      atomic.Int64
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, clients)
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				t := time.Now()
				err := op(c, i)
				if measuring.Load() {
					if err != nil {
						errs.Add(1)
					} else {
						lats[c] = append(lats[c], time.Since(t))
					}
				}
			}
		}(c)
	}
	time.Sleep(b.warm)
	cpu0, cpuOK := processCPU()
	measuring.Store(true)
	start := time.Now()
	time.Sleep(b.dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1, _ := processCPU()
	stop.Store(true)
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{ops: len(all), errs: errs.Load(), elapsed: elapsed}
	if cpuOK {
		r.cpu = cpu1 - cpu0
	}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

func (b benchRun) baseline(dir string, replicas, clients, size int, base cluster.Config) (result, error) {
	if b.skipBaseline {
		return result{ops: 1, elapsed: time.Second, p50: 1, p99: 1}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return result{}, err
	}
	bl, err := StartBaseline(ctx, dir, replicas, base)
	if err != nil {
		return result{}, err
	}
	defer bl.Close()
	payload := make([]byte, size)
	return b.drive(clients, func(c, i int) error { return bl.Apply(payload) }), nil
}

func (b benchRun) ledger(dir string, groups, replicas, clients, size int, base *cluster.Config, viaHTTP bool) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir, Groups: groups, Replicas: replicas, Base: base, API: unlimited})
	if err != nil {
		return result{}, err
	}
	defer lc.Close()
	leaders := make([]*cluster.Node, groups)
	apis := make([]*client.Client, groups)
	for g := range leaders {
		n, err := leaderOf(ctx, lc, g)
		if err != nil {
			return result{}, err
		}
		leaders[g] = n
		for i, o := range lc.Nodes {
			if o == n {
				apis[g], _ = client.New(lc.Addrs[i], nil)
			}
		}
	}
	payload := make([]byte, size)
	defer func() {
		for _, n := range leaders {
			if h, ok, _ := n.Store().Head(); ok {
				fmt.Fprintf(b.log, "    (group %d: %d transactions in %d blocks, %.1f per block)\n", n.Group(), h.LogSize, h.Height, float64(h.LogSize)/float64(h.Height))
			}
		}
	}()
	if viaHTTP {
		return b.drive(clients, func(c, i int) error {
			g := c % groups
			_, _, err := apis[g].Submit(context.Background(), payload, client.SubmitOptions{Group: &g})
			return err
		}), nil
	}
	return b.drive(clients, func(c, i int) error {
		g := c % groups
		_, err := leaders[g].Submit(context.Background(), chain.Tx{Kind: chain.TxData, Group: uint32(g), Payload: payload})
		return err
	}), nil
}

// leaderOf waits until ctx ends for group g to have a leader: on a loaded
// machine the leader StartLocal waited for may have lost leadership since.
func leaderOf(ctx context.Context, lc *server.Local, g int) (*cluster.Node, error) {
	for {
		if n, ok := lc.Leader(g); ok {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: group %d has no leader: %w", g, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type table struct {
	w    io.Writer
	md   bool
	head []string
	rows [][]string
}

func newTable(w io.Writer, md bool, head ...string) *table { return &table{w: w, md: md, head: head} }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

func (t *table) row(name string, size, clients int, r, base result) {
	ratio := "—"
	lat := "—"
	if name != "bare raft (baseline)" {
		ratio = fmt.Sprintf("%.1f×", r.rate()/base.rate())
		lat = fmt.Sprintf("%.2f×", float64(r.p50)/float64(base.p50))
	}
	rate := fmt.Sprintf("%.0f", r.rate())
	if r.errs > 0 {
		rate += fmt.Sprintf(" (%d errors)", r.errs)
	}
	t.rows = append(t.rows, []string{name, fmt.Sprint(size), fmt.Sprint(clients), rate, ms(r.p50), ms(r.p99), ratio, lat})
	if !t.md {
		fmt.Fprintf(t.w, "  %-28s %5d B  %3d clients  %9s tx/s  p50 %7s ms  p99 %7s ms  %s\n", name, size, clients, rate, ms(r.p50), ms(r.p99), ratio)
	}
}

func (t *table) print() {
	if !t.md {
		return
	}
	fmt.Fprintln(t.w, "| "+strings.Join(t.head, " | ")+" |")
	fmt.Fprintln(t.w, strings.Repeat("|---", len(t.head))+"|")
	for _, r := range t.rows {
		fmt.Fprintln(t.w, "| "+strings.Join(r, " | ")+" |")
	}
}
