package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"qledger/api"
	"qledger/cluster"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/scaler/kubernetes"
	"qledger/server"
)

// nodeOptions are the flags of qledger node.
type nodeOptions struct {
	cfg                     cluster.Config
	httpAddr, httpAdv, join string
	role                    string
	gossipKey, kmeClients   string
	loopback, plainGossip   bool
	leaveOnTerminate        bool
	wrong                   bool
	configFile              string
	printConfig             bool
	logs                    logOptions
	tls                     tlsFlags
	kc                      kme.ServiceConfig
	ext                     server.ExternalKME
	scale                   scaleOptions
	recordAddr              bool
	recordHeaders           string
}

// scaleOptions are the executor autoscaler's flags.
type scaleOptions struct {
	cfg      cluster.AutoscaleConfig
	on       bool
	execArgs string
	execHost string
	execBin  string
	execJoin string
	provider string
	k8s      kubernetes.Config
}

func (s *scaleOptions) register(fs *pflag.FlagSet) {
	s.registerRule(fs, "run the executor autoscaler while this node leads its group; --autoscale-provider says what acts on its decisions")
	fs.StringVar(&s.provider, "autoscale-provider", "process", "process (start executor processes on this host), kubernetes (scale each group's executor Deployment or StatefulSet through the Kubernetes API) or external (only export the decision, for KEDA or an HPA)")
	fs.StringVar(&s.k8s.Namespace, "autoscale-k8s-namespace", "", "kubernetes provider: namespace of the executor workloads (default: this pod's)")
	fs.StringVar(&s.k8s.Workload, "autoscale-k8s-deployment", "qledger-executor", "kubernetes provider: name of a group's executor workload; "+kubernetes.GroupPlaceholder+" in it is the group number (required with more than one group)")
	fs.StringVar(&s.k8s.Kind, "autoscale-k8s-kind", kubernetes.KindDeployment, "kubernetes provider: "+kubernetes.KindDeployment+" or "+kubernetes.KindStatefulSet)
	fs.StringVar(&s.k8s.Kubeconfig, "autoscale-k8s-kubeconfig", "", "kubernetes provider: kubeconfig file (default: the pod's service account, in-cluster)")
	fs.StringVar(&s.execArgs, "autoscale-executor-args", "", "extra flags for every executor process, space-separated (with TLS: its --ca, --cert, --cert-key)")
	fs.StringVar(&s.execHost, "autoscale-executor-host", "127.0.0.1", "address executor processes bind")
	fs.StringVar(&s.execBin, "autoscale-executor-binary", "", "qledger binary for executors (default: this one)")
	fs.StringVar(&s.execJoin, "autoscale-executor-join", "", "gossip seeds executors join (default: this node's gossip address)")
}

// registerRule adds --autoscale (described by on) and the decision
// rule's flags, which qledger node and qledger dev share.
func (s *scaleOptions) registerRule(fs *pflag.FlagSet, on string) {
	s.cfg = cluster.DefaultAutoscaleConfig()
	fs.BoolVar(&s.on, "autoscale", false, on)
	fs.IntVar(&s.cfg.Min, "autoscale-min", s.cfg.Min, "fewest executors per group (0: scale to zero)")
	fs.IntVar(&s.cfg.Max, "autoscale-max", s.cfg.Max, "most executors per group")
	fs.Float64Var(&s.cfg.TargetInFlight, "autoscale-target", s.cfg.TargetInFlight, "invocations in flight one executor should carry")
	fs.DurationVar(&s.cfg.TargetLatency, "autoscale-target-latency", 0, "add an executor while the mean invocation latency is above this (0: off)")
	fs.Float64Var(&s.cfg.TargetCPU, "autoscale-target-cpu", 0, "add an executor while invocations are in flight and the executors' mean CPU use, as a share of their machines' CPUs (0 to 1), is above this (0: off)")
	fs.DurationVar(&s.cfg.Interval, "autoscale-interval", s.cfg.Interval, "time between decisions (one step each)")
	fs.DurationVar(&s.cfg.UpWindow, "autoscale-up-window", s.cfg.UpWindow, "scale up only when more were wanted for this long")
	fs.DurationVar(&s.cfg.DownWindow, "autoscale-down-window", s.cfg.DownWindow, "scale down only when fewer were wanted for this long")
	fs.DurationVar(&s.cfg.IdleToZero, "autoscale-idle", s.cfg.IdleToZero, "shrink to --autoscale-min after this long without invocations")
	fs.DurationVar(&s.cfg.ColdStartWait, "cold-start-wait", 0, "with --autoscale: an invocation at a group with no executor waits up to this long for one to become eligible (the autoscaler decides at once), then is served by whoever is there; 0: the voters serve it at once")
}

// autoscale returns the server's autoscaler config, nil when off. The
// executors inherit this node's group count, gossip encryption, cluster
// label and timing.
func (s *scaleOptions) autoscale(o *nodeOptions) (*server.Autoscale, error) {
	if !s.on {
		return nil, nil
	}
	if o.role == string(cluster.RoleExecutor) {
		return nil, usageErrorf("node: --autoscale runs on a voter-role node, not an executor")
	}
	if err := s.cfg.Validate(); err != nil {
		return nil, usageErrorf("node: %v", err)
	}
	switch s.provider {
	case "external":
		return &server.Autoscale{Config: s.cfg, External: true}, nil
	case "kubernetes":
		kc := s.k8s
		if kc.Namespace == "" {
			kc.Namespace = podNamespace()
		}
		kc.Groups = o.cfg.Groups
		if err := kc.Validate(); err != nil {
			return nil, usageErrorf("node: --autoscale-k8s-*: %v", err)
		}
		return &server.Autoscale{Config: s.cfg, Kubernetes: &kc}, nil
	case "process":
	default:
		return nil, usageErrorf("node: --autoscale-provider %q (process, kubernetes or external)", s.provider)
	}
	args := []string{"--cluster-label", o.cfg.ClusterLabel, "--log-level", "info"}
	if o.gossipKey != "" {
		args = append(args, "--gossip-key", o.gossipKey)
	} else {
		args = append(args, "--insecure-gossip")
	}
	if o.loopback {
		args = append(args, "--loopback-timing")
	}
	args = append(args, strings.Fields(s.execArgs)...)
	return &server.Autoscale{Config: s.cfg, Binary: s.execBin, Host: s.execHost, Join: splitList(s.execJoin), Args: args}, nil
}

// podNamespace is the namespace of the pod this process runs in (its
// service account's), or "" outside Kubernetes.
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (a *app) nodeCmd() *cobra.Command {
	o := &nodeOptions{cfg: cluster.DefaultConfig()}
	o.kc.QKD = qkd.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "node --data DIR | --config FILE",
		Short: "run one node",
		Long: `Run one node. Every setting is a flag, an environment variable (QLEDGER_*)
and a key of the YAML configuration file named by --config, spelt as the
flag (data, groups, bind, join, gossip-key, ...; lists may be YAML lists).
A flag on the command line wins over its environment variable, which wins
over the file, which wins over the default. --print-config prints the
settings that result, as a configuration file, and exits.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), o.configFile); err != nil {
					return usageErrorf("node: %v", err)
				}
			}
			if o.printConfig {
				b, err := effectiveConfig(cmd.Flags())
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(b)
				return err
			}
			return a.runNode(o)
		},
	}
	o.register(cmd.Flags())
	cmd.AddCommand(a.nodeLeaveCmd())
	return cmd
}

// register adds the node's flags to fs, each with its environment
// variable where it has one.
func (o *nodeOptions) register(fs *pflag.FlagSet) {
	cfg := &o.cfg
	fs.StringVar(&cfg.DataDir, "data", "", "data directory [required]")
	fs.StringVar(&cfg.NodeID, "id", "", "node ID, 64 hex digits (default: kept in the data directory, random at first start)")
	fs.IntVar(&cfg.Groups, "groups", 1, "number of node groups n; the same on every node")
	fs.StringVar(&cfg.BindAddr, "bind", "127.0.0.1:7000", "raft/RPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise", "", "raft/RPC address other nodes dial (default: the bound address)")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "HTTP API listen address")
	fs.StringVar(&o.httpAdv, "http-advertise", "", "HTTP API address to advertise (default: the bound address)")
	fs.StringVar(&o.join, "join", "", "comma-separated gossip addresses of existing nodes (seeds)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start this node's group alone as its only voter")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "start a new group once this many voter-role nodes of it are in gossip")
	fs.StringVar(&cfg.GossipBind, "gossip-bind", "127.0.0.1:7946", "gossip (memberlist) listen address, UDP and TCP")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", "", "gossip address other nodes dial (default: the bound address)")
	fs.StringVar(&o.gossipKey, "gossip-key", "", "base64 AES key (16, 24 or 32 bytes) encrypting gossip; 'qledger keygen' makes one")
	fs.BoolVar(&o.plainGossip, "insecure-gossip", false, "allow gossip without --gossip-key (in the clear)")
	fs.StringVar(&cfg.ClusterLabel, "cluster-label", cfg.ClusterLabel, "label on every gossip packet; nodes with another label never meet")
	fs.StringVar(&o.role, "role", "voter", "voter (may hold a raft vote) or executor (ephemeral, never votes)")
	fs.BoolVar(&o.leaveOnTerminate, "leave-on-terminate", true, "on SIGINT or SIGTERM, leave the cluster (its group's raft configuration and gossip) before stopping; false: hand over leadership and stop as a member, for a restart in place (the group removes a node that stays away past its grace period)")
	fs.IntVar(&cfg.TargetVoters, "target-voters", cfg.TargetVoters, "voters per group the reconciler keeps (3 or 5)")
	fs.BoolVar(&o.loopback, "loopback-timing", false, "short raft timeouts for nodes on one machine")
	fs.BoolVar(&cfg.SyncFSM, "sync-fsm", cfg.SyncFSM, "fsync the chain store on every block, so after any crash it is checked and kept instead of rebuilt; false: written without fsync, rebuilt after a machine crash, and every raft snapshot is a full copy of it")
	fs.BoolVar(&cfg.ReferenceSnapshots, "reference-snapshots", cfg.ReferenceSnapshots, "with --sync-fsm: raft snapshots refer to the chain store instead of copying it (O(1) each); a store damaged at rest must then be seeded from a peer; false: every raft snapshot is a full copy of the store")
	fs.IntVar(&cfg.CheckWindow, "check-window", cfg.CheckWindow, "newest blocks the start check verifies in full before the node serves")
	fs.DurationVar(&cfg.ScrubInterval, "scrub-interval", cfg.ScrubInterval, "how often the whole chain store is verified again (0: only after start and on demand)")
	fs.IntVar(&cfg.ScrubRate, "scrub-rate", cfg.ScrubRate, "blocks a verification reads per second at most (0: no cap)")
	fs.DurationVar(&cfg.CompareInterval, "compare-interval", cfg.CompareInterval, "how often a replica compares a recent block header with its peers' (0: never)")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "raft log entries that trigger a raft snapshot")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often raft checks whether to take a snapshot")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", cfg.TrailingLogs, "raft log entries a snapshot leaves in the log for slow followers")
	o.tls.register(fs, "node")
	fs.StringVar(&o.kc.Addr, "kme-addr", "", "serve the ETSI GS QKD 014 key manager and the quantum-keyed channel; mutual-TLS listen address (empty: off)")
	fs.StringVar(&o.kc.TLSDir, "tls-dir", "", "CA and certificates for the key manager (default DATA/tls; a throwaway CA is created if none is there)")
	fs.StringVar(&o.kmeClients, "kme-clients", "client", "comma-separated client SAE IDs the key manager serves")
	fs.StringVar(&o.kc.Gateway, "gateway-sae", "gateway", "this gateway's SAE ID at the key manager")
	registerExternalKME(fs, &o.ext)
	o.scale.register(fs)
	fs.BoolVar(&o.recordAddr, "record-client-addr", false, "execution records keep the client's address (personal data: see SECURITY.md)")
	fs.StringVar(&o.recordHeaders, "record-headers", "", "comma-separated request headers execution records keep, e.g. User-Agent,X-Request-Id (may be personal data: see SECURITY.md)")
	fs.Float64Var(&o.kc.QKD.Channel.Noise, "qkd-noise", 0.02, "simulated BB84 channel: depolarizing probability")
	o.logs.register(fs, "info")
	fs.StringVar(&o.configFile, "config", "", "YAML configuration file: a key per flag (see above)")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective configuration (flags, environment, file, defaults) as a configuration file and exit")
	fs.BoolVar(&o.wrong, "test-wrong-results", false, "TEST ONLY: this node returns a forged result for every execution (a Byzantine node, to see it outvoted)")
	for name, env := range map[string]string{
		"data": "QLEDGER_DATA", "id": "QLEDGER_NODE_ID", "groups": "QLEDGER_GROUPS", "bind": "QLEDGER_BIND",
		"advertise": "QLEDGER_ADVERTISE", "http": "QLEDGER_HTTP", "http-advertise": "QLEDGER_HTTP_ADVERTISE",
		"join": "QLEDGER_JOIN", "bootstrap": "QLEDGER_BOOTSTRAP", "bootstrap-expect": "QLEDGER_BOOTSTRAP_EXPECT",
		"gossip-bind": "QLEDGER_GOSSIP_BIND", "gossip-advertise": "QLEDGER_GOSSIP_ADVERTISE", "gossip-key": "QLEDGER_GOSSIP_KEY",
		"insecure-gossip": "QLEDGER_INSECURE_GOSSIP", "cluster-label": "QLEDGER_CLUSTER_LABEL", "role": "QLEDGER_ROLE",
		"target-voters": "QLEDGER_TARGET_VOTERS", "kme-addr": "QLEDGER_KME_ADDR", "tls-dir": "QLEDGER_TLS_DIR",
		"kme-clients": "QLEDGER_KME_CLIENTS", "gateway-sae": "QLEDGER_GATEWAY_SAE", "log-level": "QLEDGER_LOG_LEVEL",
		"log-format": "QLEDGER_LOG_FORMAT", "config": "QLEDGER_CONFIG", "sync-fsm": "QLEDGER_SYNC_FSM", "reference-snapshots": "QLEDGER_REFERENCE_SNAPSHOTS",
		"check-window": "QLEDGER_CHECK_WINDOW", "scrub-interval": "QLEDGER_SCRUB_INTERVAL", "scrub-rate": "QLEDGER_SCRUB_RATE",
		"compare-interval": "QLEDGER_COMPARE_INTERVAL", "snapshot-threshold": "QLEDGER_SNAPSHOT_THRESHOLD",
		"snapshot-interval": "QLEDGER_SNAPSHOT_INTERVAL", "trailing-logs": "QLEDGER_TRAILING_LOGS",
		"leave-on-terminate": "QLEDGER_LEAVE_ON_TERMINATE",
	} {
		bindEnv(fs, name, env)
	}
	markList(fs, "join")
	markList(fs, "kme-clients")
	markSecret(fs, "gossip-key")
}

// registerExternalKME adds the flags naming a key manager in another
// process.
func registerExternalKME(fs *pflag.FlagSet, e *server.ExternalKME) {
	fs.StringVar(&e.URL, "kme-url", "", "run the quantum-keyed channel with the ETSI GS QKD 014 key manager at this https URL instead of serving one (excludes --kme-addr)")
	fs.StringVar(&e.Cert, "kme-cert", "", "with --kme-url: the gateway SAE's client certificate (PEM); its Common Name is the gateway's SAE ID")
	fs.StringVar(&e.Key, "kme-cert-key", "", "with --kme-url: the private key of --kme-cert (PEM)")
	fs.StringVar(&e.CA, "kme-ca", "", "with --kme-url: CA certificate verifying the key manager (PEM; default: the system roots)")
	bindEnv(fs, "kme-url", "QLEDGER_KME_URL")
	bindEnv(fs, "kme-cert", "QLEDGER_KME_CERT")
	bindEnv(fs, "kme-cert-key", "QLEDGER_KME_CERT_KEY")
	bindEnv(fs, "kme-ca", "QLEDGER_KME_CA")
}

// serverConfig turns the flags into the node's config.
func (a *app) serverConfig(o *nodeOptions) (server.Config, error) {
	cfg := server.Config{Cluster: o.cfg, APIAddr: o.httpAddr, APIAdvertise: o.httpAdv, ExternalKME: o.ext, ForgeResults: o.wrong}
	c := &cfg.Cluster
	if c.DataDir == "" {
		return cfg, usageErrorf("node: --data is required")
	}
	c.Join = splitList(o.join)
	c.Version = a.version
	var err error
	if c.Role, err = cluster.ParseRole(o.role); err != nil {
		return cfg, err
	}
	if err := o.ext.Validate(); err != nil {
		return cfg, usageErrorf("node: --kme-url, --kme-cert, --kme-cert-key: %v", err)
	}
	if o.kc.Addr != "" && o.ext.URL != "" {
		return cfg, usageErrorf("node: --kme-addr serves a key manager, --kme-url uses another: give one of them")
	}
	if o.kc.Addr != "" {
		kc := o.kc
		kc.Masters = splitList(o.kmeClients)
		cfg.KeyService = &kc
	}
	if o.gossipKey != "" {
		if c.GossipKey, err = base64.StdEncoding.DecodeString(o.gossipKey); err != nil {
			return cfg, fmt.Errorf("node: --gossip-key is not base64: %w", err)
		}
	} else if !o.plainGossip {
		return cfg, errors.New("node: gossip must be encrypted: set --gossip-key (make one with 'qledger keygen'), or --insecure-gossip to gossip in the clear")
	}
	if o.loopback {
		c.LoopbackTiming()
	}
	if c.TLS, err = o.tls.credentials(); err != nil {
		return cfg, fmt.Errorf("node: %w", err)
	}
	if cfg.Autoscale, err = o.scale.autoscale(o); err != nil {
		return cfg, err
	}
	cfg.Origin = api.OriginConfig{ClientAddr: o.recordAddr, Headers: splitList(o.recordHeaders)}
	return cfg, nil
}

// runNode runs one node until SIGINT or SIGTERM, then leaves the cluster
// gracefully (or, with --leave-on-terminate=false, stops as a member, to
// start again in place); SIGHUP reloads its certificates.
func (a *app) runNode(o *nodeOptions) error {
	cfg, err := a.serverConfig(o)
	if err != nil {
		return err
	}
	cfg.Logger = a.logger(o.logs)
	if o.gossipKey == "" {
		cfg.Logger.Warn("--insecure-gossip: gossip is not encrypted; anyone who reaches the gossip port can read membership and join it")
	}
	if cfg.Cluster.TLS == nil {
		cfg.Logger.Warn("no certificate (--ca, --cert, --cert-key): plain TCP between nodes and plain HTTP on the API, every caller anonymous")
	}
	if err := cluster.EnableRaftMetrics(); err != nil {
		return err
	}
	n, err := server.Start(cfg)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	inPlace := false
	for stop := false; !stop; {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				n.Reload()
				continue
			}
			inPlace = !o.leaveOnTerminate
			if inPlace {
				cfg.Logger.Info("stopping; staying a member of the cluster (--leave-on-terminate=false)", "signal", s.String())
			} else {
				cfg.Logger.Info("leaving the cluster", "signal", s.String())
			}
			stop = true
		case err := <-n.Failed():
			cfg.Logger.Error("API server failed", "error", err)
			stop = true
		case <-n.Left():
			cfg.Logger.Info("left the cluster on request; stopping")
			stop = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if inPlace {
		return n.StopInPlace(ctx)
	}
	return n.Stop(ctx)
}
