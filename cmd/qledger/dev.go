package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"qledger/api"
	"qledger/cluster"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/server"
)

// devOptions are the flags of qledger dev.
type devOptions struct {
	groups, replicas int
	dir, httpAddr    string
	logs             logOptions
	insecure         bool
	// callerRate is each caller's API rate limit (requests/s; 0: none).
	callerRate float64
	// cpuProfile, if set, is a file for a CPU profile of the whole run.
	cpuProfile string
	// scale is the executor autoscaler (--autoscale), with the embedded
	// cluster as its provider.
	scale scaleOptions
}

func (a *app) devCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run an embedded cluster of groups × replicas on loopback",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.groups < 1 || o.replicas < 1 || o.groups*o.replicas > 64 {
				return usageErrorf("dev: need 1 <= groups × replicas <= 64, got %d × %d", o.groups, o.replicas)
			}
			if o.callerRate < 0 {
				return usageErrorf("dev: --caller-rate must not be negative (0: no limit), got %g", o.callerRate)
			}
			if err := o.scale.cfg.Validate(); o.scale.on && err != nil {
				return usageErrorf("dev: %v", err)
			}
			if o.cpuProfile != "" {
				stop, err := startCPUProfile(o.cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return a.runDev(o)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.groups, "groups", 2, "number of node groups")
	fs.IntVar(&o.replicas, "replicas", 3, "nodes per group")
	fs.StringVar(&o.dir, "data", "", "data directory (default: a new temporary directory, removed on exit)")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "API address of the first node")
	o.logs.register(fs, "warn")
	fs.BoolVar(&o.insecure, "insecure", false, "no CA: plain TCP between nodes and plain HTTP on the API, every caller anonymous")
	fs.Float64Var(&o.callerRate, "caller-rate", api.DefaultConfig().RatePerCaller, "each caller's API rate limit in requests/s, per node (0: no limit; load tests)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run, until Ctrl-C, to this file")
	o.scale.registerRule(fs, "run the executor autoscaler on every group's leader, with this embedded cluster as its provider: executor nodes start in this process as demand asks and leave after idling")
	return cmd
}

// devAutoscale makes every voter of the embedded cluster run the executor
// autoscaler while it leads its group, the cluster itself starting and
// stopping the executor nodes (cluster.Local is the provider). The
// executors 'qledger cluster scale' adds are others, not counted.
func devAutoscale(lc *server.Local, cfg cluster.AutoscaleConfig) error {
	for _, n := range lc.Nodes {
		if err := n.Autoscale(cfg, lc.Local); err != nil {
			return err
		}
	}
	return nil
}

// devStartTimeout bounds qledger dev's start: the cluster's first
// leaders and the key manager's first keys.
const devStartTimeout = 60 * time.Second

// runDev starts the embedded cluster and its key manager, prints how to
// reach them, and runs until interrupted.
func (a *app) runDev(o devOptions) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "qledger-dev-")
		if err != nil {
			return err
		}
		o.dir = d
		defer os.RemoveAll(d)
	}
	if err := cluster.EnableRaftMetrics(); err != nil {
		return err
	}
	d, err := a.startDev(o, devStartTimeout)
	if err != nil {
		return err
	}
	defer d.close()
	a.printDev(o, d.lc, d.ks, d.ca != nil, d.tlsDir)
	if o.scale.on { // after printDev: the autoscaler may add nodes at once
		if err := devAutoscale(d.lc, o.scale.cfg); err != nil {
			return err
		}
		c := o.scale.cfg
		fmt.Fprintf(a.stdout, "Executor autoscaler on: %d..%d executors per group, %g invocations in flight each, to %d after %s idle\n", c.Min, c.Max, c.TargetInFlight, c.Min, c.IdleToZero)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	<-sig
	fmt.Fprintln(a.stdout, "stopping")
	return nil
}

// devRun is a started qledger dev: the embedded cluster and its key
// manager, which runs until close.
type devRun struct {
	lc     *server.Local
	ks     *kme.Service
	ca     *pki.CA // nil with --insecure
	tlsDir string
}

// startDev starts the key manager and the embedded cluster in o.dir and
// waits, at most timeout, until the key manager holds keys for the
// client. Only the start is bounded by timeout: the key manager keeps
// refilling its pools until close.
func (a *app) startDev(o devOptions, timeout time.Duration) (*devRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	logger := a.logger(o.logs)
	d := &devRun{tlsDir: filepath.Join(o.dir, "tls")}
	if !o.insecure {
		var err error
		if d.ca, err = server.DevCA(d.tlsDir); err != nil {
			return nil, err
		}
	}
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18 // ~200 keys of 256 bits per block
	qc.Channel.Noise = 0.02
	ks, err := kme.StartService(context.Background(), kme.ServiceConfig{Addr: "127.0.0.1:0", TLSDir: d.tlsDir, Masters: []string{"client"}, Gateway: "gateway", QKD: qc, Logger: logger.Named("kme")})
	if err != nil {
		return nil, err
	}
	d.ks = ks
	keys := &api.KeyChannel{KME: ks.KME.Local(ks.Gateway), GatewaySAE: ks.Gateway}
	limit := func(c *api.Config) { c.RatePerCaller = o.callerRate }
	base := cluster.DefaultConfig()
	base.DevTiming()
	if d.lc, err = server.StartLocal(ctx, server.LocalConfig{Dir: o.dir, Groups: o.groups, Replicas: o.replicas, APIAddr: o.httpAddr, Logger: logger, Keys0: keys, CA: d.ca, API: limit, Base: &base}); err != nil {
		d.close()
		return nil, err
	}
	if err := ks.WaitKeys(ctx, "client"); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// close stops the cluster, then the key manager.
func (d *devRun) close() {
	if d.lc != nil {
		d.lc.Close()
	}
	d.ks.Close()
}

// startCPUProfile writes a CPU profile to path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("dev: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("dev: cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// printDev prints the cluster's addresses and the environment to use it.
func (a *app) printDev(o devOptions, lc *server.Local, ks *kme.Service, withCA bool, tlsDir string) {
	w := a.stdout
	fmt.Fprintf(w, "qledger dev cluster: %d groups × %d replicas, data in %s\n", o.groups, o.replicas, o.dir)
	fmt.Fprintf(w, "API: %s\n", lc.Addrs[0])
	for i, n := range lc.Nodes {
		fmt.Fprintf(w, "  node %s  group %d  api %s  raft %s\n", n.ID().Short(), n.Group(), lc.Addrs[i], n.Info().Addr)
	}
	fmt.Fprintf(w, "Key manager (ETSI GS QKD 014, mutual TLS): %s\n", ks.URL)
	fmt.Fprintf(w, "  its CA: %s\n", filepath.Join(ks.TLSDir, "ca.pem"))
	fmt.Fprintf(w, "  master SAE %q (the client): %s\n", "client", server.CertPair(ks.TLSDir, "client"))
	fmt.Fprintf(w, "  slave SAE %q (the gateway): %s\n", ks.Gateway, server.CertPair(ks.TLSDir, ks.Gateway))
	if withCA {
		fmt.Fprintf(w, "Cluster CA and client certificates (one per role: submitter, auditor, admin): %s\n", tlsDir)
		fmt.Fprintf(w, "  as a submitter: export QLEDGER_ADDR=%s QLEDGER_CA=%s QLEDGER_CERT=%s QLEDGER_CERT_KEY=%s\n", lc.Addrs[0],
			filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "submitter.pem"), filepath.Join(tlsDir, "submitter-key.pem"))
		fmt.Fprintf(w, "  as an auditor or admin: add %s (or admin)\n", server.TLSHint(tlsDir, pki.RoleAuditor))
		fmt.Fprintf(w, "  with any HTTPS client (node certificates are valid for 127.0.0.1, ::1, localhost):\n    curl --cacert %s --cert %s --key %s %s/v1/cluster\n",
			filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "submitter.pem"), filepath.Join(tlsDir, "submitter-key.pem"), lc.Addrs[0])
	}
	fmt.Fprintf(w, "\nTry (with the environment above):\n  qledger tx submit 'hello'\n  qledger tx submit --secure --kme %s --tls-dir %s 'sealed hello'\n  qledger chain verify\nPress Ctrl-C to stop.\n", ks.URL, ks.TLSDir)
}
