// Package server assembles qledger nodes with their HTTP APIs: one node
// process (Start), and embedded clusters of several nodes in one process
// for development, the demo and benchmarks (StartLocal). It owns what a
// node needs beyond the cluster runtime: the API listener and its
// advertised address, the key manager service or an external key manager
// for the quantum-keyed channel, certificate reloads, and the graceful
// stop. cmd/qledger parses flags and calls it.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api"
	"qledger/cluster"
	"qledger/execute"
	"qledger/function"
	"qledger/qkd/kme"
	"qledger/scaler/kubernetes"
)

// Named errors.
var (
	// ErrInvalidConfig is a Config or LocalConfig that cannot be run.
	ErrInvalidConfig = errors.New("server: invalid config")
)

// Config is one node process.
type Config struct {
	// Cluster is the node's runtime config. Its APIAddr is set from the
	// API listener (or APIAdvertise).
	Cluster cluster.Config
	// APIAddr is the HTTP API listen address (host:port).
	APIAddr string
	// APIAdvertise, if set, is the API URL other nodes and clients are
	// told; by default http(s)://the bound address.
	APIAdvertise string
	// KeyService, if set, runs a key manager service beside the node and
	// the quantum-keyed channel uses it in process. An empty TLSDir is
	// Cluster.DataDir/tls. Excludes ExternalKME.
	KeyService *kme.ServiceConfig
	// ExternalKME, if its URL is set, is a key manager in another process
	// that the quantum-keyed channel uses.
	ExternalKME ExternalKME
	// CertWarnBefore is how long before the node's certificate (or its
	// CA) expires the node logs a warning at every check (hourly and after
	// each reload); 0: DefaultCertWarnBefore. The expiry is also the
	// metric qledger_certificate_expiry_timestamp_seconds.
	CertWarnBefore time.Duration
	// Origin says what of a request's origin execution records keep
	// (client address, selected headers); nothing by default.
	Origin api.OriginConfig
	// Autoscale, if set on a voter-role node, runs the executor autoscaler
	// (while this node leads its group) with the provider it names.
	Autoscale *Autoscale
	// ForgeResults is for tests only: the node returns a forged success
	// for every execution (a Byzantine node, to see it outvoted).
	ForgeResults bool
	// Logger; nil: a default logger named "qledger".
	Logger hclog.Logger
}

// Validate checks what Start needs beyond cluster.Config.Validate.
func (c Config) Validate() error {
	if c.APIAddr == "" {
		return fmt.Errorf("%w: no API listen address", ErrInvalidConfig)
	}
	if c.KeyService != nil && c.ExternalKME.URL != "" {
		return fmt.Errorf("%w: a key manager service and an external key manager exclude each other: give one of them", ErrInvalidConfig)
	}
	return c.ExternalKME.Validate()
}

// Node is a running node process: the cluster node and its API, and the
// key manager service if configured.
type Node struct {
	node   *cluster.Node
	api    *api.Server
	keys   *kme.Service
	logger hclog.Logger
	failed chan error
	expiry *expiryWatch     // nil without certificates
	stop   chan struct{}    // closed by Stop
	execs  *ProcessProvider // nil without Autoscale

	leaveOnce sync.Once
	leaveErr  error
	left      chan struct{} // closed once Leave has run
}

// Start opens the node, listens for the API and serves it. On error
// nothing is left running.
func Start(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "qledger"})
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys, err := cfg.ExternalKME.KeyChannel()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", cfg.APIAddr, err)
	}
	cfg.Cluster.Logger = cfg.Logger
	cfg.Cluster.APIAddr = apiURL(ln, cfg.Cluster.TLS != nil)
	if cfg.APIAdvertise != "" {
		cfg.Cluster.APIAddr = cfg.APIAdvertise
	}
	n, err := cluster.Open(cfg.Cluster)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Node{node: n, logger: cfg.Logger, failed: make(chan error, 1), stop: make(chan struct{}), left: make(chan struct{})}
	if err := s.serve(cfg, ln, keys); err != nil {
		ln.Close()
		n.Close()
		return nil, err
	}
	s.watchExpiry(cfg)
	if err := s.autoscale(cfg); err != nil {
		_ = s.api.Shutdown(context.Background())
		n.Close()
		return nil, err
	}
	return s, nil
}

// autoscale starts the executor autoscaler if configured, with the
// external, kubernetes or process provider.
func (s *Node) autoscale(cfg Config) error {
	a := cfg.Autoscale
	if a == nil {
		return nil
	}
	ac := *a
	if ac.External {
		if err := s.node.Autoscale(ac.Config, s.node.ExternalExecutors()); err != nil {
			return err
		}
		s.logger.Info("executor autoscaler on (external scaler: decisions exported, nothing started)", "min", ac.Config.Min, "max", ac.Config.Max)
		return nil
	}
	if ac.Kubernetes != nil {
		kc := *ac.Kubernetes
		kc.Groups = cfg.Cluster.Groups
		p, err := kubernetes.New(kc, s.logger)
		if err != nil {
			return err
		}
		if err := s.node.Autoscale(ac.Config, p); err != nil {
			return err
		}
		s.logger.Info("executor autoscaler on (kubernetes provider)", "min", ac.Config.Min, "max", ac.Config.Max, "namespace", kc.Namespace, "workload", kc.Workload, "kind", kc.Kind)
		return nil
	}
	if ac.Dir == "" {
		ac.Dir = filepath.Join(cfg.Cluster.DataDir, "executors")
	}
	if len(ac.Join) == 0 {
		ac.Join = []string{cmp.Or(cfg.Cluster.GossipAdvertise, cfg.Cluster.GossipBind)}
	}
	p, err := NewProcessProvider(ac, cfg.Cluster.Groups, s.logger)
	if err != nil {
		return err
	}
	if err := s.node.Autoscale(ac.Config, p); err != nil {
		return err
	}
	s.execs = p
	s.logger.Info("executor autoscaler on (process provider)", "min", ac.Config.Min, "max", ac.Config.Max, "target_in_flight", ac.Config.TargetInFlight, "idle_to_zero", ac.Config.IdleToZero)
	return nil
}

// watchExpiry starts the certificate expiry checks if the node has a
// certificate.
func (s *Node) watchExpiry(cfg Config) {
	creds := s.node.Credentials()
	if creds == nil {
		return
	}
	registerCertMetric()
	s.expiry = &expiryWatch{creds: creds, node: s.node.ID().String(), warnBefore: cmp.Or(cfg.CertWarnBefore, DefaultCertWarnBefore), logger: s.logger, now: time.Now}
	go s.expiry.run(s.stop)
}

// serve starts the key manager service if configured and the API on ln.
func (s *Node) serve(cfg Config, ln net.Listener, keys *api.KeyChannel) error {
	if cfg.ForgeResults {
		s.logger.Warn("TEST ONLY: --test-wrong-results: this node forges every execution result")
		s.node.SetExecHook(forgeResult)
	}
	acfg := api.DefaultConfig()
	acfg.Logger = s.logger
	acfg.TLS = cfg.Cluster.TLS
	acfg.Leaver = s
	acfg.Origin = cfg.Origin
	if keys != nil {
		acfg.Keys = keys
		s.logger.Info("key channel uses an external key manager", "url", cfg.ExternalKME.URL, "gateway", keys.GatewaySAE)
	}
	if kc := cfg.KeyService; kc != nil {
		ks, err := s.startKeys(*kc, cfg.Cluster.DataDir)
		if err != nil {
			return err
		}
		acfg.Keys = &api.KeyChannel{KME: ks.KME.Local(ks.Gateway), GatewaySAE: ks.Gateway}
	}
	srv, err := api.New(acfg, s.node)
	if err != nil {
		if s.keys != nil {
			s.keys.Close()
		}
		return err
	}
	s.api = srv
	go func() { s.failed <- srv.Serve(ln) }()
	s.logger.Info("serving", "api", cfg.Cluster.APIAddr, "raft", s.node.Info().Addr, "node", s.node.ID().String(), "group", s.node.Group())
	return nil
}

func (s *Node) startKeys(kc kme.ServiceConfig, dataDir string) (*kme.Service, error) {
	if kc.TLSDir == "" {
		kc.TLSDir = filepath.Join(dataDir, "tls")
	}
	kc.Logger = s.logger.Named("kme")
	ks, err := kme.StartService(context.Background(), kc)
	if err != nil {
		return nil, err
	}
	s.keys = ks
	s.logger.Info("key manager serving", "url", ks.URL, "tls_dir", kc.TLSDir, "clients", kc.Masters, "gateway", kc.Gateway)
	return ks, nil
}

func apiURL(ln net.Listener, tls bool) string {
	if tls {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// Cluster is the node's runtime.
func (s *Node) Cluster() *cluster.Node { return s.node }

// Failed delivers the API server's error if it stops serving on its own.
func (s *Node) Failed() <-chan error { return s.failed }

// Reload reads the node's certificates and the key manager's CA again
// (SIGHUP). New certificates apply to connections made from then on; on
// error the old ones stay. The outcome is logged.
func (s *Node) Reload() {
	creds := s.node.Credentials()
	if creds == nil {
		s.logger.Info("SIGHUP: no certificates to reload")
	} else if err := creds.Reload(); err != nil {
		s.logger.Error("SIGHUP: certificates not reloaded; the old ones stay", "error", err)
	} else {
		s.logger.Info("SIGHUP: certificates reloaded", "identity", creds.Identity().String(), "not_after", creds.NotAfter().UTC().Format(time.RFC3339))
		if s.expiry != nil {
			s.expiry.check()
		}
	}
	if s.keys == nil {
		return
	}
	if err := s.keys.Reload(); err != nil {
		s.logger.Error("SIGHUP: key manager certificates not reloaded; the old ones stay", "error", err)
	} else {
		s.logger.Info("SIGHUP: key manager certificates reloaded", "tls_dir", s.keys.TLSDir)
	}
}

// Stop leaves gracefully: it hands over leadership, leaves the group's
// raft configuration and gossip, then stops serving and closes the node.
// A leave that does not finish within ctx is logged; the group removes
// the node after its grace period.
func (s *Node) Stop(ctx context.Context) error {
	if s.execs != nil {
		s.execs.Close(ctx) // its executors leave first
	}
	if err := s.Leave(ctx); err != nil {
		s.logger.Warn("leave was not clean; the group removes this node after its grace period", "error", err)
	}
	return s.shutdown(ctx)
}

// StopInPlace stops the node without leaving the cluster, for a restart
// on the same data directory: leadership handed over, executions drained
// (cluster.Node.StepDown), then as Stop. The node stays in its group's
// raft configuration and catches up when it starts again; the group
// removes it only if it stays away past its grace period.
func (s *Node) StopInPlace(ctx context.Context) error {
	if s.execs != nil {
		s.execs.Close(ctx) // its executors leave: they are ephemeral
	}
	s.logger.Info("stopping in place: staying a member of the cluster")
	if err := s.node.StepDown(ctx); err != nil {
		s.logger.Warn("stepping down before the stop was not clean", "error", err)
	}
	return s.shutdown(ctx)
}

// shutdown stops serving and closes the node, once it has left or
// stepped down (Stop, StopInPlace).
func (s *Node) shutdown(ctx context.Context) error {
	close(s.stop)
	_ = s.api.Shutdown(ctx)
	if s.keys != nil {
		s.keys.Close()
	}
	return s.node.Close()
}

// Leave takes the node out of the cluster gracefully (api.Leaver, POST
// /v1/node/leave): leadership handed over, out of the group's raft
// configuration, out of gossip. It runs once; later calls return the
// first one's result. Left is closed afterwards: the process then stops.
func (s *Node) Leave(ctx context.Context) error {
	s.leaveOnce.Do(func() {
		s.logger.Info("leaving the cluster")
		s.leaveErr = s.node.Leave(ctx)
		close(s.left)
	})
	return s.leaveErr
}

// Left is closed once the node has left the cluster (Leave); its process
// should then Stop.
func (s *Node) Left() <-chan struct{} { return s.left }

// forgeResult replaces a result with a forged success (ForgeResults).
func forgeResult(r execute.Result) execute.Result {
	r.Outcome, r.ExitCode, r.Stdout = function.OutcomeOK, 0, []byte(`{"forged":true}`)
	r.Hash = function.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
	return r
}
