package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"qledger/api"
	"qledger/cluster"
	"qledger/execute"
	"qledger/function"
	"qledger/qkd"
)

// nodeOptions are the flags of qledger node beyond the cluster config.
type nodeOptions struct {
	cfg                               cluster.Config
	httpAddr, httpAdv, join, logLevel string
	loopback, plainGossip, wrong      bool
	gossipKey, role, kmeClients       string
	tls                               tlsFlags
	kc                                keyServiceConfig
	ext                               externalKME
}

func (a *app) nodeCmd() *cobra.Command {
	o := &nodeOptions{cfg: cluster.DefaultConfig()}
	o.kc.QKD = qkd.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "node --data DIR",
		Short: "run one node",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return a.runNode(o) },
	}
	o.register(cmd.Flags())
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
	fs.IntVar(&cfg.TargetVoters, "target-voters", cfg.TargetVoters, "voters per group the reconciler keeps (3 or 5)")
	fs.BoolVar(&o.loopback, "loopback-timing", false, "short raft timeouts for nodes on one machine")
	o.tls.register(fs, "node")
	fs.StringVar(&o.kc.Addr, "kme-addr", "", "serve the ETSI GS QKD 014 key manager and the quantum-keyed channel; mutual-TLS listen address (empty: off)")
	fs.StringVar(&o.kc.TLSDir, "tls-dir", "", "CA and certificates for the key manager (default DATA/tls; a throwaway CA is created if none is there)")
	fs.StringVar(&o.kmeClients, "kme-clients", "client", "comma-separated client SAE IDs the key manager serves")
	fs.StringVar(&o.kc.Gateway, "gateway-sae", "gateway", "this gateway's SAE ID at the key manager")
	o.ext.register(fs)
	fs.Float64Var(&o.kc.QKD.Channel.Noise, "qkd-noise", 0.02, "simulated BB84 channel: depolarizing probability")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.BoolVar(&o.wrong, "test-wrong-results", false, "TEST ONLY: this node returns a forged result for every execution (a Byzantine node, to see it outvoted)")
	for name, env := range map[string]string{
		"data": "QLEDGER_DATA", "id": "QLEDGER_NODE_ID", "groups": "QLEDGER_GROUPS", "bind": "QLEDGER_BIND",
		"advertise": "QLEDGER_ADVERTISE", "http": "QLEDGER_HTTP", "http-advertise": "QLEDGER_HTTP_ADVERTISE",
		"join": "QLEDGER_JOIN", "bootstrap": "QLEDGER_BOOTSTRAP", "bootstrap-expect": "QLEDGER_BOOTSTRAP_EXPECT",
		"gossip-bind": "QLEDGER_GOSSIP_BIND", "gossip-advertise": "QLEDGER_GOSSIP_ADVERTISE", "gossip-key": "QLEDGER_GOSSIP_KEY",
		"insecure-gossip": "QLEDGER_INSECURE_GOSSIP", "cluster-label": "QLEDGER_CLUSTER_LABEL", "role": "QLEDGER_ROLE",
		"target-voters": "QLEDGER_TARGET_VOTERS", "kme-addr": "QLEDGER_KME_ADDR", "tls-dir": "QLEDGER_TLS_DIR",
		"kme-clients": "QLEDGER_KME_CLIENTS", "gateway-sae": "QLEDGER_GATEWAY_SAE", "log-level": "QLEDGER_LOG_LEVEL",
	} {
		bindEnv(fs, name, env)
	}
}

func (a *app) runNode(o *nodeOptions) error {
	cfg := o.cfg
	httpAddr, httpAdv, join, logLevel, loopback := o.httpAddr, o.httpAdv, o.join, o.logLevel, o.loopback
	gossipKey, plainGossip, role, tf, kc, ext, kmeClients, wrongResults := &o.gossipKey, &o.plainGossip, &o.role, o.tls, o.kc, o.ext, o.kmeClients, &o.wrong
	if cfg.DataDir == "" {
		return usageErrorf("node: --data is required")
	}
	cfg.Join = splitList(join)
	r, err := cluster.ParseRole(*role)
	if err != nil {
		return err
	}
	cfg.Role = r
	extKeys, err := ext.keyChannel(kc.Addr)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if *gossipKey != "" {
		if cfg.GossipKey, err = base64.StdEncoding.DecodeString(*gossipKey); err != nil {
			return fmt.Errorf("node: --gossip-key is not base64: %w", err)
		}
	} else if !*plainGossip {
		return errors.New("node: gossip must be encrypted: set --gossip-key (make one with 'qledger keygen'), or --insecure-gossip to gossip in the clear")
	} else {
		a.logger("warn").Warn("--insecure-gossip: gossip is not encrypted; anyone who reaches the gossip port can read membership and join it")
	}
	if loopback {
		cfg.LoopbackTiming()
	}
	logger := a.logger(logLevel)
	cfg.Logger = logger
	cluster.Version = a.version
	if err := cluster.EnableRaftMetrics(); err != nil {
		return err
	}

	if cfg.TLS, err = tf.credentials(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if cfg.TLS == nil {
		logger.Warn("no certificate (--ca, --cert, --cert-key): plain TCP between nodes and plain HTTP on the API, every caller anonymous")
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("node: listen %s: %w", httpAddr, err)
	}
	cfg.APIAddr = "http://" + httpLn.Addr().String()
	if cfg.TLS != nil {
		cfg.APIAddr = "https://" + httpLn.Addr().String()
	}
	if httpAdv != "" {
		cfg.APIAddr = httpAdv
	}
	n, err := cluster.Open(cfg)
	if err != nil {
		httpLn.Close()
		return err
	}
	if *wrongResults {
		logger.Warn("TEST ONLY: --test-wrong-results: this node forges every execution result")
		n.SetExecHook(forgeResult)
	}
	acfg := api.DefaultConfig()
	acfg.Logger = logger
	acfg.TLS = cfg.TLS
	if extKeys != nil {
		acfg.Keys = extKeys
		logger.Info("key channel uses an external key manager", "url", ext.URL, "gateway", extKeys.GatewaySAE)
	}
	var keySvc *keyService
	if kc.Addr != "" {
		if kc.TLSDir == "" {
			kc.TLSDir = filepath.Join(cfg.DataDir, "tls")
		}
		kc.Masters = splitList(kmeClients)
		kc.Logger = logger.Named("kme")
		ks, err := startKeyService(context.Background(), kc)
		if err != nil {
			n.Close()
			return err
		}
		defer ks.Close()
		keySvc = ks
		acfg.Keys = ks.Channel
		logger.Info("key manager serving", "url", ks.URL, "tls_dir", kc.TLSDir, "clients", kc.Masters, "gateway", kc.Gateway)
	}
	srv, err := api.New(acfg, n)
	if err != nil {
		n.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(httpLn) }()
	logger.Info("serving", "api", cfg.APIAddr, "raft", n.Info().Addr, "node", n.ID().String(), "group", n.Group())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
wait:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				// New certificates apply to connections made from now on.
				if cfg.TLS == nil {
					logger.Info("SIGHUP: no certificates to reload")
				} else if err := cfg.TLS.Reload(); err != nil {
					logger.Error("SIGHUP: certificates not reloaded; the old ones stay", "error", err)
				} else {
					logger.Info("SIGHUP: certificates reloaded", "identity", cfg.TLS.Identity().String())
				}
				if keySvc != nil {
					if err := keySvc.Reload(); err != nil {
						logger.Error("SIGHUP: key manager certificates not reloaded; the old ones stay", "error", err)
					} else {
						logger.Info("SIGHUP: key manager certificates reloaded", "tls_dir", keySvc.TLSDir)
					}
				}
				continue
			}
			logger.Info("leaving the cluster", "signal", s.String())
			break wait
		case err := <-errc:
			logger.Error("API server failed", "error", err)
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Graceful leave: hand over leadership, leave the group's raft
	// configuration and gossip, then stop serving.
	if err := n.Leave(ctx); err != nil {
		logger.Warn("leave was not clean; the group removes this node after its grace period", "error", err)
	}
	_ = srv.Shutdown(ctx)
	return n.Close()
}

// forgeResult replaces a result with a forged success (--test-wrong-results).
func forgeResult(r execute.Result) execute.Result {
	r.Outcome, r.ExitCode, r.Stdout = function.OutcomeOK, 0, []byte(`{"forged":true}`)
	r.Hash = function.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
	return r
}
