package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"qledger/api"
	"qledger/cluster"
	"qledger/pki"
	"qledger/qkd"
)

// localCluster is an embedded cluster with an API server on every node.
type localCluster struct {
	*cluster.Local
	servers []*api.Server
	addrs   []string // API base URLs, node order

	mu        sync.Mutex
	executors []*cluster.Node
}

// ScaleExecutors implements api.Scaler: it starts executor nodes (placed
// in the least populated groups) or makes the newest ones leave.
func (lc *localCluster) ScaleExecutors(ctx context.Context, k int) (int, error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for len(lc.executors) < k {
		n, err := lc.AddNode(cluster.RoleExecutor, -1)
		if err != nil {
			return len(lc.executors), err
		}
		lc.executors = append(lc.executors, n)
	}
	for len(lc.executors) > k {
		n := lc.executors[len(lc.executors)-1]
		lc.executors = lc.executors[:len(lc.executors)-1]
		if err := n.Leave(ctx); err != nil {
			n.Close()
			return len(lc.executors), err
		}
		n.Close()
	}
	return len(lc.executors), nil
}

// clusterOpts are the optional parts of an embedded cluster.
type clusterOpts struct {
	logger hclog.Logger
	// base is the node config template (nil: loopback defaults).
	base *cluster.Config
	// keys0, if set, runs the quantum-keyed channel on node 0's API.
	keys0 *api.KeyChannel
	// ca, if set, issues node certificates: mutual TLS between nodes and
	// HTTPS with client certificates on every API.
	ca *pki.CA
	// api, if set, adjusts every API server's config (benchmarks lift the
	// per-caller rate limit).
	api func(*api.Config)
}

// startCluster starts groups × replicas nodes in this process, node 0's
// API on httpAddr and the others on free loopback ports.
func startCluster(ctx context.Context, dir string, groups, replicas int, httpAddr string, o clusterOpts) (*localCluster, error) {
	logger, base, keys0, ca := o.logger, o.base, o.keys0, o.ca
	total := groups * replicas
	lns := make([]net.Listener, total)
	addrs := make([]string, total)
	for i := range lns {
		addr := "127.0.0.1:0"
		if i == 0 && httpAddr != "" {
			addr = httpAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		lns[i] = ln
		addrs[i] = "http://" + ln.Addr().String()
		if ca != nil {
			addrs[i] = "https://" + ln.Addr().String()
		}
	}
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: groups, Replicas: replicas, DataDir: dir, Logger: logger, APIAddrs: addrs, Base: base, CA: ca})
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	lc := &localCluster{Local: l, addrs: addrs}
	for i, n := range l.Nodes {
		acfg := api.DefaultConfig()
		acfg.Logger = logger
		acfg.TLS = n.Credentials()
		if o.api != nil {
			o.api(&acfg)
		}
		if i == 0 {
			acfg.Keys = keys0
			acfg.Scaler = lc
		}
		srv, err := api.New(acfg, n)
		if err != nil {
			lc.Close()
			return nil, err
		}
		lc.servers = append(lc.servers, srv)
		go srv.Serve(lns[i])
	}
	return lc, nil
}

func (lc *localCluster) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range lc.servers {
		_ = s.Shutdown(ctx)
	}
	return lc.Local.Close()
}

// devOptions are the flags of qledger dev.
type devOptions struct {
	groups, replicas        int
	dir, httpAddr, logLevel string
	insecure                bool
}

func (a *app) devCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run an embedded cluster of groups × replicas on loopback",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return a.runDev(o) },
	}
	fs := cmd.Flags()
	fs.IntVar(&o.groups, "groups", 2, "number of node groups")
	fs.IntVar(&o.replicas, "replicas", 3, "nodes per group")
	fs.StringVar(&o.dir, "data", "", "data directory (default: a new temporary directory, removed on exit)")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "API address of the first node")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level")
	fs.BoolVar(&o.insecure, "insecure", false, "no CA: plain TCP between nodes and plain HTTP on the API, every caller anonymous")
	return cmd
}

func (a *app) runDev(o devOptions) error {
	groups, replicas, dir, httpAddr, logLevel, insecure := &o.groups, &o.replicas, &o.dir, &o.httpAddr, &o.logLevel, &o.insecure
	if *groups < 1 || *replicas < 1 || *groups**replicas > 64 {
		return usageErrorf("dev: need 1 <= groups × replicas <= 64, got %d × %d", *groups, *replicas)
	}
	keep := *dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "qledger-dev-")
		if err != nil {
			return err
		}
		*dir = d
		defer os.RemoveAll(d)
	}
	if err := cluster.EnableRaftMetrics(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logger := a.logger(*logLevel)
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18 // ~200 keys of 256 bits per block
	qc.Channel.Noise = 0.02
	tlsDir := filepath.Join(*dir, "tls")
	var ca *pki.CA
	if !*insecure {
		var err error
		if ca, err = devCA(tlsDir); err != nil {
			return err
		}
	}
	ks, err := startKeyService(ctx, keyServiceConfig{Addr: "127.0.0.1:0", TLSDir: tlsDir, Masters: []string{"client"}, Gateway: "gateway", QKD: qc, Logger: logger.Named("kme")})
	if err != nil {
		return err
	}
	defer ks.Close()
	lc, err := startCluster(ctx, *dir, *groups, *replicas, *httpAddr, clusterOpts{logger: logger, keys0: ks.Channel, ca: ca})
	if err != nil {
		return err
	}
	defer lc.Close()
	if err := ks.waitKeys(ctx, "client"); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "qledger dev cluster: %d groups × %d replicas, data in %s\n", *groups, *replicas, *dir)
	fmt.Fprintf(a.stdout, "API: %s\n", lc.addrs[0])
	for i, n := range lc.Nodes {
		fmt.Fprintf(a.stdout, "  node %s  group %d  api %s  raft %s\n", n.ID().Short(), n.Group(), lc.addrs[i], n.Info().Addr)
	}
	fmt.Fprintf(a.stdout, "Key manager (ETSI GS QKD 014, mutual TLS): %s\n  CA and the client SAE's certificate: %s/{ca,client,client-key}.pem\n", ks.URL, ks.TLSDir)
	if ca != nil {
		fmt.Fprintf(a.stdout, "Cluster CA and client certificates (one per role: submitter, auditor, admin): %s\n", tlsDir)
		fmt.Fprintf(a.stdout, "  as a submitter: export QLEDGER_ADDR=%s QLEDGER_CA=%s QLEDGER_CERT=%s QLEDGER_CERT_KEY=%s\n", lc.addrs[0],
			filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "submitter.pem"), filepath.Join(tlsDir, "submitter-key.pem"))
		fmt.Fprintf(a.stdout, "  as an auditor or admin: add %s (or admin)\n", tlsHint(tlsDir, pki.RoleAuditor))
	}
	fmt.Fprintf(a.stdout, "\nTry (with the environment above):\n  qledger tx submit 'hello'\n  qledger tx submit --secure --kme %s --tls-dir %s 'sealed hello'\n  qledger chain verify\nPress Ctrl-C to stop.\n", ks.URL, ks.TLSDir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	fmt.Fprintln(a.stdout, "stopping")
	return nil
}
