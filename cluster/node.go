package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"qledger/election"
	"qledger/execute"
	"qledger/fsm"
	"qledger/pki"
)

// cleanMarker, in the data directory, says the chain store was flushed and
// closed after raft stopped.
const cleanMarker = "chain.clean"

// logCacheSize is how many recent raft log entries are kept in memory, so
// replication to followers rarely reads the log back from disk.
const logCacheSize = 1024

// NodeInfo is how the cluster knows a node.
type NodeInfo struct {
	ID    string `json:"id"`
	Group int    `json:"group"`
	// Addr is the raft/RPC address.
	Addr    string `json:"addr"`
	APIAddr string `json:"api_addr,omitempty"`
}

// Node is one node: a raft member of its group, the group's chain store,
// and the internal RPC that forwards writes and reads across the cluster.
// Its methods are safe for concurrent use.
type Node struct {
	cfg    Config
	id     NodeID
	group  int
	info   NodeInfo
	logger hclog.Logger

	mux  *mux
	raft *raft.Raft
	// raftUp is raft once NewRaft has returned, for raft's own
	// goroutines (the transport's refuseStanding) that may run before.
	raftUp     atomic.Pointer[raft.Raft]
	fsm        *fsm.FSM
	store      *fsm.Store
	logStore   *raftboltdb.BoltStore
	snaps      raft.SnapshotStore
	transport  *raft.NetworkTransport
	rpc        *rpcServer
	client     *rpcClient
	dir        *directory
	batch      *batcher
	forward    *forwarder // batches the writes forwarded to the group leader
	metrics    *nodeMetrics
	gossip     *gossip
	gossipAddr string
	rec        *reconciler
	rt         *execute.Runtime
	nonces     election.Nonces // this node's side of elections
	// pledges are the candidates' commitments made ahead of elections,
	// used while this node leads (electionTransport).
	pledges  election.Pledges
	execHook atomic.Pointer[func(execute.Result) execute.Result]
	// load counts the invocations this node leads (the autoscaler's
	// demand); scaler is the autoscaler, if Autoscale started one.
	load    loadMeter
	scaler  atomic.Pointer[autoscaler]
	started time.Time
	// barrierTerm is the term in which this node, as leader, last ran a
	// barrier (see caughtUp).
	barrierTerm atomic.Uint64
	// staleFloor, while not zero, is the raft index the rebuilt chain
	// store must reach before this node serves stale reads (see
	// staleReady).
	staleFloor atomic.Uint64
	// acks holds the appends this node's peers accepted, which confirm
	// its leadership for default reads (readconfirm.go).
	acks *appendAcks
	// leaving is set once Leave begins: the node then answers no health
	// probe, so no reconciler adds it back while its departure spreads.
	leaving atomic.Bool
	// running counts the executions this node is running for its
	// group's invocations (mExecute, mElectRevealRun); Leave waits for
	// them.
	running atomic.Int64
	integ   integrity
	// leaders closes a channel at each leader change (follow.go).
	leaders leaderWatch

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open starts a node: it opens the data directory, starts raft and the
// listener, and then joins the cluster, bootstraps its group, or simply
// resumes from the state on disk.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	if cfg.TLS != nil {
		ident := cfg.TLS.Identity()
		if ident.Role != pki.RoleNode {
			return nil, fmt.Errorf("cluster: the node certificate has role %s, not node", ident.Role)
		}
		if cfg.NodeID != "" && cfg.NodeID != ident.NodeID {
			return nil, fmt.Errorf("cluster: node ID %s differs from the certificate's %s", cfg.NodeID, ident.NodeID)
		}
		cfg.NodeID = ident.NodeID
	}
	// A new node of a multi-group cluster picks its ID so that its group
	// is among the least populated ones in gossip.
	var draw func() NodeID
	if cfg.NodeID == "" && cfg.Groups > 1 && len(cfg.Join) > 0 {
		draw = func() NodeID {
			pop, err := groupPopulations(cfg)
			if err != nil {
				cfg.Logger.Warn("could not read group populations; drawing an unbalanced ID", "error", err)
				return NewNodeID()
			}
			return balancedID(cfg.Groups, pop)
		}
	}
	id, err := loadOrCreateID(cfg.DataDir, cfg.NodeID, draw)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, id: id, started: time.Now(), group: id.Group(cfg.Groups), stop: make(chan struct{}), acks: newAppendAcks(), integ: integrity{scrubNow: make(chan chan scrubDone)}}
	n.logger = cfg.Logger.Named("node").With("node", id.Short(), "group", n.group)
	n.client = newRPCClient(cfg.RPCTimeout, dialer{creds: cfg.TLS}, n.expectedAt)

	ok := false
	defer func() {
		if !ok {
			n.closeResources()
		}
	}()

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return nil, fmt.Errorf("cluster: listen %s: %w", cfg.BindAddr, err)
		}
	}
	n.mux = newMux(ln, n.logger.Named("mux"), connRaft, connRPC, connSnapshot)
	if cfg.TLS != nil {
		n.mux.tls = versionedServer(cfg.TLS.ServerConfig(true, func(id pki.Identity) error {
			if id.Role != pki.RoleNode {
				return fmt.Errorf("%w: a %s certificate on the cluster port", ErrWrongNode, id.Role)
			}
			return nil
		}), localProtocols(), n.mux.refusedVersion)
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
			return nil, fmt.Errorf("cluster: bind address %s is unspecified; set an advertise address", cfg.BindAddr)
		}
	}
	advAddr, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		return nil, fmt.Errorf("cluster: advertise address %q: %w", adv, err)
	}
	n.info = NodeInfo{ID: id.String(), Group: n.group, Addr: adv, APIAddr: cfg.APIAddr}
	n.dir = newDirectory(n.info)
	n.metrics = newNodeMetrics(n.info)

	ecfg := execute.DefaultConfig()
	ecfg.CacheDir = filepath.Join(cfg.DataDir, "wasm-cache")
	if n.rt, err = execute.New(ecfg); err != nil {
		return nil, fmt.Errorf("cluster: function runtime: %w", err)
	}
	if n.logStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	// A chain store is reused in place when it holds every commit made
	// before the stop and the start check passes; otherwise it is rebuilt
	// from the raft snapshot and log (integrity.go).
	trustStore, err := n.openChainStore(n.logStore, snaps)
	if err != nil {
		return nil, err
	}
	// Raft sees snapshots through the FSM: a reference snapshot opens as
	// a copy of the live store (fsm.SnapshotStore).
	n.snaps = fsm.SnapshotStore(snaps, n.fsm)
	if !trustStore {
		n.staleFloor.Store(lastCommand(n.logStore))
	}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{subListener: n.mux.subs[connRaft], advertise: advAddr, dialer: dialer{creds: cfg.TLS}, expect: n.configuredAt, stop: n.stop},
		MaxPool: 8,
		Timeout: 10 * time.Second,
		Logger:  cfg.Logger.Named("raft-net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id.String())
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	if cfg.SnapshotInterval == 0 {
		rc.SnapshotInterval = 30 * time.Second
	}
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	// A leader removed from its group's configuration steps down and
	// stays a follower, not a raft that has shut down inside a running
	// process. A live node removed (qledger cluster remove, or a removal
	// its earlier incarnation asked for and a partition delayed) is still
	// in gossip, so the reconciler adds it back: that only works while
	// its raft runs. A node leaving on purpose exits anyway.
	rc.ShutdownOnRemove = false
	// Raft's per-peer timers (heartbeats, appends) are reported once, as
	// labelled series (raft_replication_heartbeat{peer_id=...}), not a
	// second time under a metric name per peer: each sample costs a
	// Prometheus summary update, several times a second per follower
	// even when idle.
	rc.NoLegacyTelemetry = true
	// A trusted chain store records the applied index, so a restart
	// resumes from it instead of reloading the last snapshot; an untrusted
	// one was removed above and is rebuilt from the snapshot.
	rc.NoSnapshotRestoreOnStart = trustStore
	rc.Logger = cfg.Logger.Named("raft").With("node", id.Short(), "group", n.group)
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	hasState, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft state: %w", err)
	}
	logs, err := raft.NewLogCache(logCacheSize, n.logStore)
	if err != nil {
		return nil, fmt.Errorf("cluster: log cache: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.logStore, n.snaps, newRaftTransport(n.transport, n.acks, rc.LocalID, n.refuseTransfer, n.refuseStanding, n.voteFrom, n.stop)); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raftUp.Store(n.raft)

	n.rpc = &rpcServer{ln: n.mux.subs[connRPC], handlers: n.handlers(), logger: n.logger.Named("rpc"), timeout: cfg.RPCTimeout, conns: map[net.Conn]struct{}{}}
	n.batch = newBatcher(n)
	n.forward = newForwarder(n.stop, forwardInflight, n.sendBatch)
	n.wg.Add(5)
	go func() { defer n.wg.Done(); n.forward.run() }()
	go func() { defer n.wg.Done(); n.mux.serve() }()
	go func() { defer n.wg.Done(); n.rpc.serve() }()
	go func() { defer n.wg.Done(); n.batch.run() }()
	go func() { defer n.wg.Done(); n.serveSnapshots() }()

	if err := n.startGossip(hasState); err != nil {
		return nil, err
	}
	if joined, err := n.gossip.join(); err != nil {
		n.logger.Warn("no gossip seed answered yet; retrying in the background", "seeds", cfg.Join, "error", err)
	} else if joined > 0 {
		n.gossip.mu.RLock()
		other, conflict := n.gossip.conflicts[n.info.ID]
		n.gossip.mu.RUnlock()
		if conflict {
			return nil, fmt.Errorf("%w: node %s is alive at %s", ErrIDConflict, id.Short(), other)
		}
	}
	if !hasState {
		if err := n.admit(); err != nil {
			return nil, err
		}
	} else {
		n.logger.Info("resuming from existing state")
	}
	n.rec = newReconciler(n)
	n.publishAlarm()
	n.metrics.setCorrupt(n.chainAlarm())
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.gossip.loop(n.stop) }()
	go func() { defer n.wg.Done(); n.rec.run(n.stop) }()
	go func() { defer n.wg.Done(); n.watchIntegrity() }()
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.watchStore() }()
	if !hasState && cfg.BootstrapExpect > 0 {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.bootstrapExpect() }()
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.watchLeader() }()
	ok = true
	n.logger.Info("node started", "addr", n.info.Addr, "api", n.info.APIAddr)
	return n, nil
}

// admit starts a node without raft state: it bootstraps its group when
// told to (InitialVoters, Bootstrap); otherwise the group leader's
// reconciler adds it once gossip shows it, and BootstrapExpect may start a
// new group (bootstrapExpect).
func (n *Node) admit() error {
	switch {
	case len(n.cfg.InitialVoters) > 0:
		return n.BootstrapGroup(n.cfg.InitialVoters)
	case n.cfg.Bootstrap:
		return n.bootstrapSelf()
	case len(n.cfg.Join) == 0 && n.cfg.BootstrapExpect == 0:
		return errors.New("cluster: a new node needs a gossip seed (join), bootstrap or bootstrap-expect")
	}
	return nil
}

// bootstrapSettleTicks is how many 100 ms ticks the candidate set must stay
// the same before bootstrapExpect acts on it.
const bootstrapSettleTicks = 5

// bootstrapExpect waits until BootstrapExpect voter-role nodes of this
// group without raft state are alive in gossip, then bootstraps the group
// with the first BootstrapExpect of them by ID if this node is one of
// them, once the set it sees has stayed the same for half a second. Nodes
// that start together converge on the same view within a few gossip
// rounds, so they compute the same list and bootstrap one group with one
// configuration; a voter-role node of the group that appears later than
// that, with an ID below one of the first N, could compute another list,
// so start exactly N voter-role nodes per group with --bootstrap-expect N
// and add more once the group exists. If any node of the group already
// has raft state, the group exists and its leader will add this node.
func (n *Node) bootstrapExpect() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	seen, stable := "", 0 // the candidate set and how many ticks it has held
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.hasRaftState() {
			return
		}
		var cands []nodeMeta
		for _, m := range n.gossip.view() {
			if m.meta.Group != n.group || m.state != stateAlive {
				continue
			}
			if m.meta.Boot {
				n.logger.Info("group already exists; waiting to be added", "member", m.meta.ID[:12])
				return
			}
			if m.meta.Role == RoleVoter {
				cands = append(cands, m.meta)
			}
		}
		if len(cands) < n.cfg.BootstrapExpect {
			seen, stable = "", 0
			continue
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
		// Act on a view that has stopped changing: nodes started together
		// see each other within a few gossip rounds, and all of them must
		// pick the same first BootstrapExpect IDs.
		var key strings.Builder
		for _, c := range cands {
			key.WriteString(c.ID)
		}
		if key.String() != seen {
			seen, stable = key.String(), 0
		}
		if stable++; stable < bootstrapSettleTicks {
			continue
		}
		cands = cands[:n.cfg.BootstrapExpect]
		var voters []NodeInfo
		for _, c := range cands {
			voters = append(voters, NodeInfo{ID: c.ID, Group: c.Group, Addr: c.Addr, APIAddr: c.API})
		}
		for _, v := range voters {
			if v.ID == n.info.ID {
				if err := n.BootstrapGroup(voters); err != nil {
					n.logger.Error("bootstrap failed", "error", err)
				} else {
					n.logger.Info("bootstrapped group", "voters", len(voters))
				}
				return
			}
		}
		n.logger.Info("not among the first nodes of the group; waiting to be added")
		return
	}
}

// hasRaftState reports whether the node is part of a raft configuration.
func (n *Node) hasRaftState() bool {
	cf := n.raft.GetConfiguration()
	return cf.Error() == nil && len(cf.Configuration().Servers) > 0
}

func (n *Node) bootstrapSelf() error {
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.info.ID), Address: raft.ServerAddress(n.info.Addr), Suffrage: raft.Voter,
	}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// Credentials are the node's TLS credentials (nil without TLS).
func (n *Node) Credentials() *pki.Credentials { return n.cfg.TLS }

// BootstrapGroup starts the node's group with the given voters (all of
// the same group, this node among them). Every listed node must be given
// the same list. Used by embedded clusters that know their layout.
func (n *Node) BootstrapGroup(voters []NodeInfo) error {
	var cfg raft.Configuration
	self := false
	for _, v := range voters {
		self = self || v.ID == n.info.ID
		if v.Group != n.group {
			return fmt.Errorf("%w: node %s is in group %d, not %d", ErrBadRequest, v.ID, v.Group, n.group)
		}
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(v.ID), Address: raft.ServerAddress(v.Addr), Suffrage: raft.Voter})
	}
	if !self {
		return fmt.Errorf("%w: node %s is not among the initial voters", ErrBadRequest, n.id.Short())
	}
	n.dir.merge(nodeEntries(voters))
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// Info describes this node.
func (n *Node) Info() NodeInfo { return n.info }

// ID is the node's ID.
func (n *Node) ID() NodeID { return n.id }

// Group is the node's group.
func (n *Node) Group() int { return n.group }

// Groups is the number of groups in the cluster.
func (n *Node) Groups() int { return n.cfg.Groups }

// Store gives read access to the local chain store.
func (n *Node) Store() *fsm.Store { return n.store }

// Learn adds nodes to this node's directory (embedded clusters use it to
// introduce nodes to each other without a join).
func (n *Node) Learn(nodes ...NodeInfo) { n.dir.merge(nodeEntries(nodes)) }

// IsLeader reports whether this node leads its group.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the group leader's info as this node sees it.
func (n *Node) Leader() (NodeInfo, bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return NodeInfo{}, false
	}
	if info, ok := n.dir.get(string(id)); ok {
		info.Addr = string(addr)
		return info, true
	}
	return NodeInfo{ID: string(id), Group: n.group, Addr: string(addr)}, true
}

// WaitLeader waits until the node's group has a leader.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		if _, ok := n.Leader(); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for a leader of group %d", ErrNoLeader, n.group)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TransferLeadership hands the group's leadership to another voter.
func (n *Node) TransferLeadership() error {
	if err := n.handOver().Error(); err != nil {
		return n.convert(err)
	}
	return nil
}

// GossipAddr is the node's gossip address (a seed for other nodes).
func (n *Node) GossipAddr() string { return n.gossipAddr }

// LeaveTimeout bounds Leave: how long a leaving node keeps trying to
// reach a leader that removes it before it gives up.
const LeaveTimeout = 10 * time.Second

// Leave takes the node out of the cluster gracefully: it hands over
// leadership if it leads, leaves gossip, and asks its group's leader to
// remove it from the raft configuration, then waits for the executions
// it was asked for to end (an executor leaving on a scale-down finishes
// the invocations that elected it). Close afterwards. From the
// moment Leave begins the node answers no health probe, so a group leader
// whose gossip has not yet heard of the departure cannot add it back.
//
// Leave takes at most LeaveTimeout (or less, if ctx ends sooner): a node
// that cannot reach a leader in that time — cut off from its group's
// majority, or with no quorum left — gives up, returns the error, and can
// be closed; the group then removes it as a failed node after
// DeadServerGrace.
func (n *Node) Leave(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, LeaveTimeout)
	defer cancel()
	var errs []error
	n.leaving.Store(true)
	if n.IsLeader() {
		if err := n.handOver().Error(); err != nil {
			n.logger.Warn("leadership transfer before leaving failed", "error", err)
		}
	}
	// Leave gossip first, so the reconciler sees "left" and does not add
	// the node back between its removal and its departure.
	if n.gossip != nil {
		n.gossip.leave(2 * time.Second)
	}
	// The leader may have added the node before any of its configuration
	// reached the node, so ask even without raft state ("not a member" is
	// as good as removed); only a node with raft state reports a removal
	// it could not get.
	hasState := n.hasRaftState()
	for attempt := 0; ; attempt++ {
		err := n.remove(ctx, RemoveRequest{ID: n.info.ID, Since: n.started.UnixNano()})
		if err == nil || errors.Is(err, ErrNotFound) {
			break
		}
		if ctx.Err() != nil || attempt > 20 {
			if hasState {
				errs = append(errs, fmt.Errorf("cluster: leave: removal from group %d: %w", n.group, err))
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Out of the configuration, the node is in no new election; the
	// executions it was asked for before run to their end, so their
	// results reach the invocations that elected it (the drain).
	if err := n.drainExecutions(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StepDown prepares the node to stop while staying a member of its
// group (a restart in place, qledger node --leave-on-terminate=false): it
// hands over leadership if it leads and waits for the executions it was
// asked for to end, within LeaveTimeout. It stays in the raft
// configuration and does not leave gossip, so its group sees a failed
// voter until it starts again (and removes it after DeadServerGrace if it
// does not). Close afterwards.
func (n *Node) StepDown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, LeaveTimeout)
	defer cancel()
	var errs []error
	if n.IsLeader() {
		if err := n.handOver().Error(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: leadership transfer: %w", err))
		}
	}
	if err := n.drainExecutions(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// drainExecutions waits until this node runs no execution, or ctx ends.
func (n *Node) drainExecutions(ctx context.Context) error {
	for n.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: leave: %d executions still running: %w", n.running.Load(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Close stops the node, leaving its state on disk. Without Leave first,
// the cluster sees a failure and removes the node after DeadServerGrace.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stop)
		if n.gossip != nil {
			_ = n.gossip.ml.Shutdown()
		}
		if n.raft != nil {
			err = n.raft.Shutdown().Error()
		}
		// Nothing applies after raft stops: flush and mark the store clean.
		if err == nil && n.store != nil && n.fsm.Err() == nil {
			if serr := n.store.Sync(); serr == nil {
				if werr := os.WriteFile(filepath.Join(n.cfg.DataDir, cleanMarker), []byte("clean\n"), 0o600); werr != nil {
					n.logger.Warn("could not mark the chain store clean", "error", werr)
				}
			}
		}
		n.closeResources()
		n.wg.Wait()
		n.logger.Info("node stopped")
	})
	return err
}

func (n *Node) closeResources() {
	if n.rpc != nil {
		n.rpc.close()
	}
	if n.transport != nil {
		n.transport.Close()
	}
	if n.mux != nil {
		n.mux.close()
	}
	if n.client != nil {
		n.client.close()
	}
	if n.logStore != nil {
		n.logStore.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.rt != nil {
		n.rt.Close()
	}
	if n.metrics != nil {
		n.metrics.unregister()
	}
}

// raftLogStoreFailed is how raft (v1.7.3, log_cache.go) words a leader's
// failure to store entries in its log; it carries no sentinel error.
const raftLogStoreFailed = "unable to store logs within log store"

// convert maps raft's errors to this package's. A leader that cannot
// store an entry in its raft log (a full disk) answers its futures with
// that error and steps down: the outcome is reported unknown (503; retry
// with the same idempotency key), not as an internal error.
func (n *Node) convert(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrAbortedByRestore),
		strings.Contains(err.Error(), raftLogStoreFailed):
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	default:
		return fmt.Errorf("cluster: raft: %w", err)
	}
}

// untilStop returns a context that ends with ctx or when the node stops,
// whichever comes first; cancel releases it.
func (n *Node) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
