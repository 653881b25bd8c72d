package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/internal/bench"
)

// benchAPICmd is a load generator against any running cluster's HTTP
// API, with the client flags of every other client command; --addr takes
// several addresses, comma-separated, and the load is spread over them.
func (a *app) benchAPICmd() *cobra.Command {
	cfg := bench.APIConfig{}
	var readLevel string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "load a running cluster through its HTTP API: throughput, latency percentiles, errors by code",
		Long: `qledger bench api drives a running cluster's HTTP API as its users do:
--clients concurrent clients spread over the --addr addresses, writing
--payload-byte transactions (and, with --reads, reading transactions
written in the run at --read-level). Closed loop by default; --rate R
starts R requests per second in all whatever the answers (open loop, each
latency from the scheduled start). With --ca/--cert/--cert-key it talks
HTTPS with that client certificate (a submitter's: reads and writes).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg.Addrs = splitList(a.client.addr)
			cfg.ReadLevel, cfg.Timeout = client.Level(readLevel), a.client.timeout
			if _, err := a.client.tls.credentials(); err != nil {
				return err
			}
			cfg.Connect = a.client.clientAt
			if err := cfg.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.API(ctx, cfg)
			if errors.Is(err, bench.ErrBadConfig) {
				return usageErrorf("%v", err)
			}
			if rep.Clients > 0 {
				if a.out.JSON() {
					if perr := a.printJSON(rep); perr != nil {
						return perr
					}
				} else {
					rep.Print(a.stdout)
				}
			}
			return err
		},
	}
	fs := cmd.Flags()
	a.client.register(fs, "timeout")
	fs.Lookup("addr").Usage = "node API addresses, comma-separated (the load is spread over them): https://host:port, http://host:port, or host:port (https with --cert, else http) (env QLEDGER_ADDR)"
	a.out.register(fs)
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients")
	fs.IntVar(&cfg.Conns, "conns", 0, "API clients (connection pools) the clients share (0: one per client)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured time before it")
	fs.IntVar(&cfg.Payload, "payload", 100, "payload bytes per written transaction")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second in all (0: closed loop)")
	fs.Float64Var(&cfg.ReadFraction, "reads", 0, "fraction of requests that read a transaction written in the run (0 to 1)")
	fs.StringVar(&readLevel, "read-level", "", "read level: stale, default or linearizable (empty: the server's default)")
	fs.IntVar(&cfg.Group, "group", -1, "group to write to (-1: the server chooses)")
	return cmd
}
