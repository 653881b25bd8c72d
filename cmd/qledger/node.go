package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"qledger/api"
	"qledger/cluster"
	"qledger/execute"
	"qledger/qkd"
)

func runNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	cfg := cluster.DefaultConfig()
	var (
		httpAddr, httpAdv, join, logLevel string
		loopback                          bool
	)
	fs.StringVar(&cfg.DataDir, "data", env("QLEDGER_DATA", ""), "data directory (env QLEDGER_DATA) [required]")
	fs.StringVar(&cfg.NodeID, "id", env("QLEDGER_NODE_ID", ""), "node ID, 64 hex digits (default: kept in the data directory, random at first start)")
	fs.IntVar(&cfg.Groups, "groups", envInt("QLEDGER_GROUPS", 1), "number of node groups n; the same on every node (env QLEDGER_GROUPS)")
	fs.StringVar(&cfg.BindAddr, "bind", env("QLEDGER_BIND", "127.0.0.1:7000"), "raft/RPC listen address (env QLEDGER_BIND)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise", env("QLEDGER_ADVERTISE", ""), "raft/RPC address other nodes dial (default: the bound address)")
	fs.StringVar(&httpAddr, "http", env("QLEDGER_HTTP", "127.0.0.1:8080"), "HTTP API listen address (env QLEDGER_HTTP)")
	fs.StringVar(&httpAdv, "http-advertise", env("QLEDGER_HTTP_ADVERTISE", ""), "HTTP API address to advertise (default: the bound address)")
	fs.StringVar(&join, "join", env("QLEDGER_JOIN", ""), "comma-separated gossip addresses of existing nodes (seeds) (env QLEDGER_JOIN)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", envBool("QLEDGER_BOOTSTRAP"), "start this node's group alone as its only voter (env QLEDGER_BOOTSTRAP)")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", envInt("QLEDGER_BOOTSTRAP_EXPECT", 0), "start a new group once this many voter-role nodes of it are in gossip (env QLEDGER_BOOTSTRAP_EXPECT)")
	fs.StringVar(&cfg.GossipBind, "gossip-bind", env("QLEDGER_GOSSIP_BIND", "127.0.0.1:7946"), "gossip (memberlist) listen address, UDP and TCP (env QLEDGER_GOSSIP_BIND)")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", env("QLEDGER_GOSSIP_ADVERTISE", ""), "gossip address other nodes dial (default: the bound address)")
	gossipKey := fs.String("gossip-key", env("QLEDGER_GOSSIP_KEY", ""), "base64 AES key (16, 24 or 32 bytes) encrypting gossip; 'qledger keygen' makes one (env QLEDGER_GOSSIP_KEY)")
	plainGossip := fs.Bool("insecure-gossip", envBool("QLEDGER_INSECURE_GOSSIP"), "allow gossip without --gossip-key (in the clear)")
	fs.StringVar(&cfg.ClusterLabel, "cluster-label", env("QLEDGER_CLUSTER_LABEL", cfg.ClusterLabel), "label on every gossip packet; nodes with another label never meet")
	role := fs.String("role", env("QLEDGER_ROLE", "voter"), "voter (may hold a raft vote) or executor (ephemeral, never votes)")
	fs.IntVar(&cfg.TargetVoters, "target-voters", envInt("QLEDGER_TARGET_VOTERS", cfg.TargetVoters), "voters per group the reconciler keeps (3 or 5)")
	fs.BoolVar(&loopback, "loopback-timing", false, "short raft timeouts for nodes on one machine")
	var tf tlsFlags
	tf.register(fs, "node")
	var kc keyServiceConfig
	var kmeClients string
	fs.StringVar(&kc.Addr, "kme-addr", env("QLEDGER_KME_ADDR", ""), "serve the ETSI GS QKD 014 key manager and the quantum-keyed channel; mutual-TLS listen address (empty: off)")
	fs.StringVar(&kc.TLSDir, "tls-dir", env("QLEDGER_TLS_DIR", ""), "CA and certificates for the key manager (default DATA/tls; a throwaway CA is created if none is there)")
	fs.StringVar(&kmeClients, "kme-clients", env("QLEDGER_KME_CLIENTS", "client"), "comma-separated client SAE IDs the key manager serves")
	fs.StringVar(&kc.Gateway, "gateway-sae", env("QLEDGER_GATEWAY_SAE", "gateway"), "this gateway's SAE ID at the key manager")
	var ext externalKME
	ext.register(fs)
	kc.QKD = qkd.DefaultConfig()
	fs.Float64Var(&kc.QKD.Channel.Noise, "qkd-noise", 0.02, "simulated BB84 channel: depolarizing probability")
	fs.StringVar(&logLevel, "log-level", env("QLEDGER_LOG_LEVEL", "info"), "log level: trace, debug, info, warn, error")
	wrongResults := fs.Bool("test-wrong-results", false, "TEST ONLY: this node returns a forged result for every execution (a Byzantine node, to see it outvoted)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if cfg.DataDir == "" {
		return errors.New("node: --data is required")
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
		newLogger("warn").Warn("--insecure-gossip: gossip is not encrypted; anyone who reaches the gossip port can read membership and join it")
	}
	if loopback {
		cfg.LoopbackTiming()
	}
	logger := newLogger(logLevel)
	cfg.Logger = logger
	cluster.Version = version
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
	r.Outcome, r.ExitCode, r.Stdout = execute.OutcomeOK, 0, []byte(`{"forged":true}`)
	r.Hash = execute.ResultHash(r.Outcome, r.ExitCode, r.Stdout)
	return r
}
