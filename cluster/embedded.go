package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"qledger/pki"
)

// LocalConfig describes an embedded cluster: Groups × Replicas nodes in
// one process, on loopback.
type LocalConfig struct {
	Groups   int
	Replicas int
	// DataDir holds one directory per node and layout.json, which keeps
	// node IDs and addresses so the same cluster can be started again.
	DataDir string
	// Base is the per-node config template (batching, raft timing);
	// DataDir, NodeID, Groups, addresses and bootstrap fields are set per
	// node. Zero value: DefaultConfig with LoopbackTiming.
	Base   *Config
	Logger hclog.Logger
	// APIAddrs, if set, gives node i's advertised HTTP address (nodes are
	// ordered by group, then replica).
	APIAddrs []string
	// CA, if set, issues every node a node certificate for its ID and
	// turns on mutual TLS between nodes (Config.TLS).
	CA *pki.CA
	// WrapListener, if set, wraps node i's listener when the cluster
	// starts (tests use it to stall a node's connections).
	WrapListener func(i int, ln net.Listener) net.Listener
}

// Local is a running embedded cluster.
type Local struct {
	ca      *pki.CA
	Nodes   []*Node
	layout  []NodeInfo
	configs []Config
	base    Config
	dir     string
	groups  int

	// execMu guards execs, the executor nodes SetExecutors started, by
	// group. AddNode is not safe for concurrent use; the provider
	// serializes its own calls.
	execMu sync.Mutex
	execs  map[int][]*Node
}

// StartLocal starts (or restarts, if DataDir has a layout) an embedded
// cluster and waits until every group has a leader.
func StartLocal(ctx context.Context, lc LocalConfig) (*Local, error) {
	if lc.Groups < 1 || lc.Replicas < 1 {
		return nil, fmt.Errorf("%w: groups and replicas must be at least 1", ErrBadRequest)
	}
	if err := os.MkdirAll(lc.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	layoutPath := filepath.Join(lc.DataDir, "layout.json")
	var layout []NodeInfo
	if b, err := os.ReadFile(layoutPath); err == nil {
		if err := json.Unmarshal(b, &layout); err != nil {
			return nil, fmt.Errorf("cluster: %s: %w", layoutPath, err)
		}
		if len(layout) != lc.Groups*lc.Replicas {
			return nil, fmt.Errorf("%w: %s has %d nodes, asked for %d×%d", ErrBadRequest, layoutPath, len(layout), lc.Groups, lc.Replicas)
		}
	}
	fresh := layout == nil
	listeners := make([]net.Listener, lc.Groups*lc.Replicas)
	closeAll := func() {
		for _, l := range listeners {
			if l != nil {
				l.Close()
			}
		}
	}
	if fresh {
		for g := 0; g < lc.Groups; g++ {
			for r := 0; r < lc.Replicas; r++ {
				layout = append(layout, NodeInfo{ID: NewNodeIDInGroup(g, lc.Groups).String(), Group: g})
			}
		}
	}
	for i := range layout {
		addr := layout[i].Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("cluster: node %d: listen %s: %w", i, addr, err)
		}
		layout[i].Addr = ln.Addr().String()
		if lc.WrapListener != nil {
			ln = lc.WrapListener(i, ln)
		}
		listeners[i] = ln
	}
	if fresh {
		b, _ := json.MarshalIndent(layout, "", "  ")
		if err := os.WriteFile(layoutPath, b, 0o600); err != nil {
			closeAll()
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	base := DefaultConfig()
	base.LoopbackTiming()
	if lc.Base != nil {
		base = *lc.Base
	}
	if len(base.GossipKey) == 0 {
		base.GossipKey = make([]byte, 32)
		if _, err := rand.Read(base.GossipKey); err != nil {
			closeAll()
			return nil, err
		}
	}
	l := &Local{ca: lc.CA, layout: layout, base: base, dir: lc.DataDir, groups: lc.Groups}
	known := append([]NodeInfo(nil), layout...)
	for i := range known {
		if i < len(lc.APIAddrs) {
			known[i].APIAddr = lc.APIAddrs[i]
		}
	}
	for i, info := range layout {
		cfg := base
		cfg.NodeID = info.ID
		cfg.DataDir = filepath.Join(lc.DataDir, fmt.Sprintf("node-g%d-r%d", info.Group, i%lc.Replicas))
		cfg.Groups = lc.Groups
		cfg.Listener = listeners[i]
		cfg.AdvertiseAddr = info.Addr
		cfg.Logger = lc.Logger
		if i < len(lc.APIAddrs) {
			cfg.APIAddr = lc.APIAddrs[i]
		}
		var voters []NodeInfo
		for _, o := range layout {
			if o.Group == info.Group {
				voters = append(voters, o)
			}
		}
		cfg.InitialVoters = voters
		cfg.GossipBind = "127.0.0.1:0"
		cfg.Join = l.seeds()
		creds, err := l.credentials(info.ID)
		if err != nil {
			closeAll()
			l.Close()
			return nil, err
		}
		cfg.TLS = creds
		l.configs = append(l.configs, cfg)
		n, err := Open(cfg)
		if err != nil {
			listeners[i] = nil
			l.Close()
			for _, ln := range listeners[i+1:] {
				ln.Close()
			}
			return nil, fmt.Errorf("cluster: node %d: %w", i, err)
		}
		listeners[i] = nil
		n.Learn(known...)
		l.Nodes = append(l.Nodes, n)
	}
	for _, n := range l.Nodes {
		if err := n.WaitLeader(ctx); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// loopbackHosts are the names an embedded node serves under: its
// certificate carries them as SANs, so that any HTTPS client holding the
// CA (curl --cacert, a stock Go client) can verify it.
var loopbackHosts = []string{"127.0.0.1", "::1", "localhost"}

// credentials issues a node certificate for id from the cluster's CA,
// valid for the loopback addresses every embedded node listens on, or
// returns nil without a CA.
func (l *Local) credentials(id string) (*pki.Credentials, error) {
	if l.ca == nil {
		return nil, nil
	}
	cert, err := l.ca.Issue(pki.Leaf{CommonName: "node-" + id[:12], Role: pki.RoleNode, NodeID: id, Hosts: loopbackHosts})
	if err != nil {
		return nil, err
	}
	return pki.NewCredentials(l.ca.PEM, cert.TLS)
}

// seeds returns the gossip addresses of running nodes.
func (l *Local) seeds() []string {
	var out []string
	for _, n := range l.Nodes {
		if n != nil && n.gossipAddr != "" {
			select {
			case <-n.stop:
			default:
				out = append(out, n.gossipAddr)
			}
		}
		if len(out) == 3 {
			break
		}
	}
	return out
}

// AddNode starts one more node that joins through gossip: the reconciler
// of its group's leader adds it (as a non-voter; voter-role nodes are
// promoted when the group needs them). group < 0 draws a random ID.
func (l *Local) AddNode(role Role, group int) (*Node, error) {
	cfg := l.base
	cfg.NodeID = ""
	if group >= 0 {
		cfg.NodeID = NewNodeIDInGroup(group, l.groups).String()
	} else if l.ca != nil {
		cfg.NodeID = NewNodeID().String() // the certificate names the ID
	}
	creds, err := l.credentials(cfg.NodeID)
	if err != nil {
		return nil, err
	}
	cfg.TLS = creds
	cfg.Role = role
	cfg.Groups = l.groups
	cfg.InitialVoters = nil
	cfg.Listener = nil
	cfg.DataDir = filepath.Join(l.dir, fmt.Sprintf("node-%d-%s", len(l.Nodes), role))
	cfg.BindAddr = "127.0.0.1:0"
	cfg.GossipBind = "127.0.0.1:0"
	cfg.Join = l.seeds()
	n, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	l.Nodes = append(l.Nodes, n)
	l.layout = append(l.layout, n.info)
	cfg.AdvertiseAddr = n.info.Addr
	cfg.BindAddr = n.info.Addr
	l.configs = append(l.configs, cfg)
	return n, nil
}

// Stop stops node i, keeping its data; Nodes[i] stays the stopped node
// until Start.
func (l *Local) Stop(i int) error { return l.Nodes[i].Close() }

// Start starts node i again from its data directory at its old address.
func (l *Local) Start(i int) error {
	cfg := l.configs[i]
	cfg.Join = l.seeds()
	if g := l.Nodes[i].gossipAddr; g != "" {
		cfg.GossipBind = g
	}
	ln, err := net.Listen("tcp", l.layout[i].Addr)
	if err != nil {
		return fmt.Errorf("cluster: restart node %d: %w", i, err)
	}
	cfg.Listener = ln
	n, err := Open(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	l.Nodes[i] = n
	return nil
}

// Leader returns the node leading group g, if any.
func (l *Local) Leader(g int) (*Node, bool) {
	for _, n := range l.Nodes {
		if n != nil && n.group == g && n.IsLeader() {
			return n, true
		}
	}
	return nil, false
}

// Close stops every node.
func (l *Local) Close() error {
	var errs []error
	for _, n := range l.Nodes {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	return errors.Join(errs...)
}

// Executors implements ExecutorProvider: the executor nodes of group this
// embedded cluster started through SetExecutors and that still run.
func (l *Local) Executors(_ context.Context, group int) (int, error) {
	l.execMu.Lock()
	defer l.execMu.Unlock()
	return len(l.execs[group]), nil
}

// SetExecutors implements ExecutorProvider: it starts executor nodes of
// group, or makes the newest ones leave (gossip, then the raft
// configuration: the group stops electing them) and stops them, until k
// run. Voters are never touched.
func (l *Local) SetExecutors(ctx context.Context, group, k int) (int, error) {
	l.execMu.Lock()
	defer l.execMu.Unlock()
	if l.execs == nil {
		l.execs = map[int][]*Node{}
	}
	for len(l.execs[group]) < k {
		n, err := l.AddNode(RoleExecutor, group)
		if err != nil {
			return len(l.execs[group]), err
		}
		l.execs[group] = append(l.execs[group], n)
	}
	for len(l.execs[group]) > k {
		list := l.execs[group]
		n := list[len(list)-1]
		l.execs[group] = list[:len(list)-1]
		err := n.Leave(ctx)
		n.Close()
		if err != nil {
			return len(l.execs[group]), err
		}
	}
	return len(l.execs[group]), nil
}
