package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"qledger/api"
	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/sharing/figure"
)

// benchCmd measures committed transactions per second and commit latency
// for the ledger beside a bare hashicorp/raft baseline measured in the
// same run, with the same replicas, clients and payloads.
func (a *app) benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "measure commit throughput and latency against a bare-raft baseline", Args: noArgs}
	cmd.AddCommand(a.benchSharingCmd(), a.benchInvokeCmd(), a.benchTLSCmd(), a.benchMembershipCmd())
	fs := cmd.Flags()
	clientsFlag := fs.String("clients", "1,16,64", "concurrent clients, comma-separated")
	payloadsFlag := fs.String("payloads", "100,1024", "payload sizes in bytes, comma-separated")
	groupsFlag := fs.String("groups", "2,4", "group counts for the scaling runs (64 clients, first payload size); empty to skip")
	replicas := fs.Int("replicas", 3, "replicas per group")
	duration := fs.Duration("duration", 3*time.Second, "measured time per run")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured time before each run")
	httpRun := fs.Bool("http", true, "also measure 64 clients through the HTTP API")
	markdown := fs.Bool("markdown", false, "print Markdown tables")
	inflight := fs.Int("max-inflight", 0, "ledger: block proposals in flight (0: the default)")
	delay := fs.Duration("batch-delay", -1, "ledger: how long a block stays open for more transactions (-1: the default)")
	skipBaseline := fs.Bool("skip-baseline", false, "measure the ledger only (for profiling; no ratios)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	cmd.RunE = func(*cobra.Command, []string) error {
		clients, err := intList(*clientsFlag)
		if err != nil {
			return err
		}
		payloads, err := intList(*payloadsFlag)
		if err != nil {
			return err
		}
		groupCounts, err := intList(*groupsFlag)
		if err != nil {
			return err
		}
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		dir, err := os.MkdirTemp("", "qledger-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		base := cluster.DefaultConfig()
		base.LoopbackTiming()
		if *inflight > 0 {
			base.MaxInflight = *inflight
		}
		if *delay >= 0 {
			base.MaxBatchDelay = *delay
		}
		run := benchRun{log: a.stderr, dur: *duration, warm: *warmup, skipBaseline: *skipBaseline}

		fmt.Fprintf(a.stdout, "qledger bench: %d replicas per group, raft log fsynced on every append (the chain store is not: it is rebuilt from raft after an unclean stop), %s per run, GOMAXPROCS %d, %d CPUs\n", *replicas, *duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
		tab := newTable(a.stdout, *markdown, "system", "payload", "clients", "tx/s", "p50 ms", "p99 ms", "vs baseline tx/s", "p50 vs baseline")
		n := 0
		for _, size := range payloads {
			for _, c := range clients {
				n++
				bl, err := run.baseline(fmt.Sprintf("%s/b%d", dir, n), *replicas, c, size, base)
				if err != nil {
					return err
				}
				lg, err := run.ledger(fmt.Sprintf("%s/l%d", dir, n), 1, *replicas, c, size, &base, false)
				if err != nil {
					return err
				}
				tab.row("bare raft (baseline)", size, c, bl, bl)
				tab.row("qledger 1 group", size, c, lg, bl)
			}
		}
		if *httpRun && len(payloads) > 0 {
			size := payloads[0]
			n++
			bl, err := run.baseline(fmt.Sprintf("%s/b%d", dir, n), *replicas, 64, size, base)
			if err != nil {
				return err
			}
			lg, err := run.ledger(fmt.Sprintf("%s/l%d", dir, n), 1, *replicas, 64, size, &base, true)
			if err != nil {
				return err
			}
			tab.row("bare raft (baseline)", size, 64, bl, bl)
			tab.row("qledger 1 group, HTTP API", size, 64, lg, bl)
		}
		for _, g := range groupCounts {
			size := payloads[0]
			n++
			bl, err := run.baseline(fmt.Sprintf("%s/b%d", dir, n), *replicas, 64, size, base)
			if err != nil {
				return err
			}
			lg, err := run.ledger(fmt.Sprintf("%s/l%d", dir, n), g, *replicas, 64, size, &base, false)
			if err != nil {
				return err
			}
			tab.row("bare raft (baseline)", size, 64, bl, bl)
			tab.row(fmt.Sprintf("qledger %d groups", g), size, 64, lg, bl)
		}
		tab.print()
		return nil
	}
	return cmd
}

// unlimited lifts the per-caller limits: a benchmark is one caller
// driving the cluster as hard as it can.
func unlimited(c *api.Config) { c.RatePerCaller, c.MaxInvocationsPerCaller = 0, 0 }

func intList(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, usageErrorf("bench: %q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

type result struct {
	ops      int
	errs     int64
	elapsed  time.Duration
	p50, p99 time.Duration
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
	measuring.Store(true)
	start := time.Now()
	time.Sleep(b.dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{ops: len(all), errs: errs.Load(), elapsed: elapsed}
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
	bl, err := cluster.StartBaseline(ctx, dir, replicas, base)
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
	lc, err := startCluster(ctx, dir, groups, replicas, "127.0.0.1:0", clusterOpts{base: base, api: unlimited})
	if err != nil {
		return result{}, err
	}
	defer lc.Close()
	leaders := make([]*cluster.Node, groups)
	apis := make([]*client.Client, groups)
	for g := range leaders {
		n, ok := lc.Leader(g)
		if !ok {
			return result{}, fmt.Errorf("bench: group %d has no leader", g)
		}
		leaders[g] = n
		for i, o := range lc.Nodes {
			if o == n {
				apis[g], _ = client.New(lc.addrs[i], nil)
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

// benchSharingCmd reproduces SSDSM's Figure 4 with package sharing: split and
// recovery time and per-node storage for paper and dispersal modes.
func (a *app) benchSharingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sharing", Short: "reproduce SSDSM's Figure 4: split, recovery, storage per node", Args: noArgs}
	fs := cmd.Flags()
	out := fs.String("out", "bench-sharing", "directory for figure4.csv, figure4.png and summary.txt")
	quick := fs.Bool("quick", false, "smaller sizes and fewer repetitions")
	cmd.RunE = func(*cobra.Command, []string) error {
		cfg := figure.DefaultConfig()
		cfg.Quick = *quick
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		return figure.Run(cfg, *out, a.stdout)
	}
	return cmd
}
