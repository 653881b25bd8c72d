package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api"
	"qledger/cluster"
	"qledger/pki"
)

// LocalConfig is an embedded cluster: groups × replicas nodes in this
// process, each with its API on loopback.
type LocalConfig struct {
	// Dir holds the nodes' data directories.
	Dir              string
	Groups, Replicas int
	// APIAddr is node 0's API listen address; empty or port 0: a free
	// port. The other nodes listen on free loopback ports.
	APIAddr string
	// Base is the node config template (nil: loopback defaults).
	Base *cluster.Config
	// Keys0, if set, runs the quantum-keyed channel on node 0's API.
	Keys0 *api.KeyChannel
	// CA, if set, issues node certificates: mutual TLS between nodes and
	// HTTPS with client certificates on every API.
	CA *pki.CA
	// API, if set, adjusts every API server's config (benchmarks lift the
	// per-caller rate limit).
	API    func(*api.Config)
	Logger hclog.Logger
}

// Local is a running embedded cluster with an API server on every node.
// Node 0's API scales executor nodes (api.Scaler).
type Local struct {
	*cluster.Local
	// Addrs are the API base URLs, in node order.
	Addrs   []string
	servers []*api.Server

	mu        sync.Mutex
	executors []*cluster.Node
}

// StartLocal starts an embedded cluster and its API servers. On error
// nothing is left running.
func StartLocal(ctx context.Context, c LocalConfig) (*Local, error) {
	lns, addrs, err := listenAPIs(c.Groups*c.Replicas, c.APIAddr, c.CA != nil)
	if err != nil {
		return nil, err
	}
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: c.Groups, Replicas: c.Replicas, DataDir: c.Dir, Logger: c.Logger, APIAddrs: addrs, Base: c.Base, CA: c.CA})
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	lc := &Local{Local: l, Addrs: addrs}
	for i, n := range l.Nodes {
		acfg := api.DefaultConfig()
		acfg.Logger = c.Logger
		acfg.TLS = n.Credentials()
		if c.API != nil {
			c.API(&acfg)
		}
		if i == 0 {
			acfg.Keys = c.Keys0
			acfg.Scaler = lc
		}
		srv, err := api.New(acfg, n)
		if err != nil {
			for _, ln := range lns[i:] {
				ln.Close()
			}
			lc.Close()
			return nil, err
		}
		lc.servers = append(lc.servers, srv)
		go srv.Serve(lns[i])
	}
	return lc, nil
}

// listenAPIs opens n API listeners, the first on first (if set), and
// returns them with their base URLs.
func listenAPIs(n int, first string, tls bool) ([]net.Listener, []string, error) {
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		addr := "127.0.0.1:0"
		if i == 0 && first != "" {
			addr = first
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return nil, nil, fmt.Errorf("server: listen %s: %w", addr, err)
		}
		lns[i], addrs[i] = ln, apiURL(ln, tls)
	}
	return lns, addrs, nil
}

// ScaleExecutors implements api.Scaler: it starts executor nodes (placed
// in the least populated groups) or makes the newest ones leave.
func (lc *Local) ScaleExecutors(ctx context.Context, k int) (int, error) {
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

// Kill stops node n's API and closes the node without leaving, as a
// crash would.
func (lc *Local) Kill(ctx context.Context, n *cluster.Node) {
	for i, o := range lc.Nodes {
		if o == n && i < len(lc.servers) {
			_ = lc.servers[i].Shutdown(ctx)
		}
	}
	n.Close()
}

// Close stops every API server and node.
func (lc *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range lc.servers {
		_ = s.Shutdown(ctx)
	}
	return lc.Local.Close()
}
