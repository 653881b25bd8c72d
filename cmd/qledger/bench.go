package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"qledger/internal/bench"
	"qledger/sharing/figure"
)

// benchCmd measures committed transactions per second and commit latency
// for the ledger beside a bare hashicorp/raft baseline measured in the
// same run; its subcommands measure invocations, TLS, membership and
// sharing.
func (a *app) benchCmd() *cobra.Command {
	cfg := bench.ThroughputConfig{}
	var clients, payloads, groups string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "measure commit throughput and latency against a bare-raft baseline",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			var err error
			if cfg.Clients, err = intList(clients); err != nil {
				return err
			}
			if cfg.Payloads, err = intList(payloads); err != nil {
				return err
			}
			if cfg.Groups, err = intList(groups); err != nil {
				return err
			}
			return bench.Throughput(cfg, a.stdout, a.stderr)
		},
	}
	cmd.AddCommand(a.benchSharingCmd(), a.benchInvokeCmd(), a.benchTLSCmd(), a.benchMembershipCmd(), a.benchFailoverCmd(), a.benchAPICmd(), a.benchGrowthCmd())
	fs := cmd.Flags()
	fs.StringVar(&clients, "clients", "1,16,64", "concurrent clients, comma-separated")
	fs.StringVar(&payloads, "payloads", "100,1024", "payload sizes in bytes, comma-separated")
	fs.StringVar(&groups, "groups", "2,4", "group counts for the scaling runs (64 clients, first payload size); empty to skip")
	fs.IntVar(&cfg.Replicas, "replicas", 3, "replicas per group")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured time per run")
	fs.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "unmeasured time before each run")
	fs.BoolVar(&cfg.HTTP, "http", true, "also measure 64 clients through the HTTP API")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print Markdown tables")
	fs.IntVar(&cfg.MaxInflight, "max-inflight", 0, "ledger: block proposals in flight (0: the default)")
	fs.DurationVar(&cfg.BatchDelay, "batch-delay", -1, "ledger: how long a block stays open for more transactions (-1: the default)")
	fs.BoolVar(&cfg.SkipBaseline, "skip-baseline", false, "measure the ledger only (for profiling; no ratios)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

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

func (a *app) benchInvokeCmd() *cobra.Command {
	var cfg bench.InvokeConfig
	var groups string
	cmd := &cobra.Command{
		Use:   "invoke",
		Short: "verified invocations vs the bare ledger and the wasm call alone",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			var err error
			if cfg.Groups, err = intList(groups); err != nil {
				return err
			}
			if len(cfg.Groups) == 0 {
				return usageErrorf("bench invoke: --groups needs at least one group count")
			}
			return bench.Invoke(cfg, a.stdout, a.stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&groups, "groups", "1,3", "group counts measured, comma-separated")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the first verified-invocation run to this file")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured time per run")
	fs.BoolVar(&cfg.Go, "go", true, "also measure the Go increment (needs the Go toolchain to build it)")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print a Markdown table")
	return cmd
}

func (a *app) benchTLSCmd() *cobra.Command {
	var cfg bench.TLSConfig
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "what mutual TLS costs: submit, invoke, handshakes",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return bench.TLS(cfg, a.stdout, a.stderr) },
	}
	fs := cmd.Flags()
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured time per run")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent clients for the submit runs (invocations use a quarter)")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print a Markdown table")
	return cmd
}

func (a *app) benchMembershipCmd() *cobra.Command {
	var cfg bench.MembershipConfig
	cmd := &cobra.Command{
		Use:   "membership",
		Short: "join, promotion, failover and removal times with node processes",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if cfg.Rounds < 1 {
				return usageErrorf("bench: --rounds must be at least 1")
			}
			if cfg.Binary == "" {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench: own binary: %w", err)
				}
				cfg.Binary = self
			}
			return bench.Membership(cfg, a.stdout, a.stderr)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&cfg.Rounds, "rounds", 3, "measured rounds (a join and a failover each)")
	fs.StringVar(&cfg.Binary, "binary", "", "qledger executable to run as the nodes (default: this one)")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print a Markdown table")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level of the node processes (their logs are shown on failure)")
	return cmd
}

func (a *app) benchFailoverCmd() *cobra.Command {
	var cfg bench.FailoverConfig
	var clients string
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "client-visible write gap when the leader stops, beside raft's election time, with node processes",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			var err error
			if cfg.Clients, err = intList(clients); err != nil {
				return err
			}
			if cfg.Rounds < 1 || len(cfg.Clients) == 0 || cfg.Pause <= 0 {
				return usageErrorf("bench: --rounds must be at least 1, --clients not empty and --pause positive")
			}
			if cfg.Binary == "" {
				if cfg.Binary, err = os.Executable(); err != nil {
					return fmt.Errorf("bench: own binary: %w", err)
				}
			}
			return bench.Failover(cfg, a.stdout, a.stderr)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&cfg.Rounds, "rounds", 3, "faults per client count")
	fs.StringVar(&clients, "clients", "1,8", "client counts, comma-separated (1: one sequential writer)")
	fs.DurationVar(&cfg.Pause, "pause", 6*time.Second, "how long the leader stays stopped (SIGSTOP)")
	fs.BoolVar(&cfg.Loopback, "loopback-timing", false, "run the nodes with the loopback raft timing instead of the default (LAN) one")
	fs.StringVar(&cfg.Binary, "binary", "", "qledger executable to run as the nodes (default: this one)")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print a Markdown table")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level of the node processes (their logs are shown on failure)")
	return cmd
}

func (a *app) benchGrowthCmd() *cobra.Command {
	cfg := bench.GrowthConfig{To: 1_000_000, Steps: 4, Clients: 64, Payload: 100, Reads: 300, Durable: true, LogLevel: "info"}
	cmd := &cobra.Command{
		Use:   "growth",
		Short: "grow one group of three node processes to --to transactions; disk per tx, write rate, reads, restarts and snapshots at each step",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			var err error
			if cfg.Binary == "" {
				if cfg.Binary, err = os.Executable(); err != nil {
					return fmt.Errorf("bench: own binary: %w", err)
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			return bench.Growth(cfg, a.stdout, a.stderr)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&cfg.To, "to", cfg.To, "chain size in transactions at the last step")
	fs.IntVar(&cfg.Steps, "steps", cfg.Steps, "measured sizes, each 3x the one before, ending at --to")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent writers, spread over the nodes")
	fs.IntVar(&cfg.Payload, "payload", cfg.Payload, "payload bytes per transaction")
	fs.IntVar(&cfg.Reads, "reads", cfg.Reads, "reads measured per step")
	fs.BoolVar(&cfg.Durable, "reference-snapshots", cfg.Durable, "run the nodes in their default mode: a durable chain store, raft snapshots are references to it; false: with --sync-fsm=false --reference-snapshots=false (the store written without fsync, every raft snapshot a full copy)")
	fs.BoolVar(&cfg.Keys, "idempotency-keys", false, "give every write an idempotency key (a de-duplication record each)")
	fs.StringVar(&cfg.Binary, "binary", "", "qledger executable to run as the nodes (default: this one)")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print a Markdown table")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level of the node processes (info: snapshot durations are read from their logs)")
	return cmd
}

// benchSharingCmd reproduces SSDSM's Figure 4 with package sharing: split
// and recovery time and per-node storage for paper and dispersal modes.
func (a *app) benchSharingCmd() *cobra.Command {
	cfg := figure.DefaultConfig()
	var out string
	cmd := &cobra.Command{
		Use:   "sharing",
		Short: "reproduce SSDSM's Figure 4: split, recovery, storage per node",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return figure.Run(cfg, out, a.stdout)
		},
	}
	cmd.Flags().StringVar(&out, "out", "bench-sharing", "directory for figure4.csv, figure4.png and summary.txt")
	cmd.Flags().BoolVar(&cfg.Quick, "quick", false, "smaller sizes and fewer repetitions")
	return cmd
}
