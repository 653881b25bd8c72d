package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/pki"
)

// Config configures one node.
type Config struct {
	// NodeID is the node's 256-bit ID as 64 hex digits. Empty: read from
	// DataDir, or drawn at random on first start and kept there.
	NodeID string
	// DataDir holds the raft log, snapshots, the chain store and the ID.
	DataDir string
	// Groups is n, the number of node groups; the node's group is its ID
	// mod n. Every node of a cluster must use the same value.
	Groups int
	// BindAddr is where the raft/RPC listener binds ("127.0.0.1:0" picks a
	// port).
	BindAddr string
	// AdvertiseAddr is the raft/RPC address other nodes dial. Empty: the
	// bound address.
	AdvertiseAddr string
	// APIAddr is this node's HTTP API address, advertised to other nodes
	// and shown in cluster status. Optional.
	APIAddr string
	// Join lists gossip addresses of existing nodes (seeds). A new node
	// needs one; it is added to its group by the group leader's
	// reconciler. Seeds are also re-joined periodically, so a healed
	// partition merges again.
	Join []string

	// Role is RoleVoter (may be promoted to a raft voter) or RoleExecutor
	// (stays a non-voter).
	Role Role
	// GossipBind is the memberlist address (UDP and TCP);
	// "127.0.0.1:0" picks a port. GossipAdvertise is what others dial
	// (default: the bound address).
	GossipBind      string
	GossipAdvertise string
	// GossipKey encrypts gossip (AES-GCM; 16, 24 or 32 bytes). Nodes with
	// another key never see each other. Empty: gossip in the clear.
	GossipKey []byte
	// ClusterLabel is put on every gossip packet; packets with another
	// label are dropped.
	ClusterLabel string
	// Version is the build version this node advertises in gossip, so
	// operators can see a mixed-version cluster during an upgrade. It
	// informs only; empty is allowed.
	Version string
	// GossipLoopback shortens gossip timers for nodes on one machine.
	GossipLoopback bool
	// GossipBlocked, if set, drops gossip from the node's gossip address
	// to another: a fault-injection hook for partition tests.
	GossipBlocked func(from, to string) bool
	// BootstrapExpect, when set, bootstraps a new group once this many
	// voter-role nodes of the group without raft state are alive in
	// gossip: the first BootstrapExpect of them by ID, all with the same
	// configuration.
	BootstrapExpect int

	// TargetVoters is how many voters the reconciler keeps per group.
	TargetVoters int
	// StabilizationTime is how long a non-voter must stay healthy before
	// it is promoted.
	StabilizationTime time.Duration
	// DeadServerGrace is how long a failed node stays in its group's
	// configuration before it is removed (a node that left gracefully is
	// removed at once).
	DeadServerGrace time.Duration
	// ReconcileInterval is how often a group leader reconciles.
	ReconcileInterval time.Duration
	// RejoinInterval is how often seeds are joined again.
	RejoinInterval time.Duration
	// MaxTrailingLogs is how far behind the leader a server may be and
	// still count as healthy.
	MaxTrailingLogs uint64
	// Bootstrap makes the node start its group alone as its only voter
	// when it has no raft state and no Join address could place it.
	Bootstrap bool
	// InitialVoters, when set, bootstraps a node without raft state into a
	// group of exactly these voters (all in the node's group, the node among
	// them). Every one of them must be given the same list.
	InitialVoters []NodeInfo
	// TLS, when set, puts mutual TLS 1.3 on the raft/RPC listener: peers
	// must present node certificates from the same CA, a node reached at
	// a configured address must present that node's ID, and the node's
	// own ID is the one in its certificate (NodeID, if set, must match).
	TLS *pki.Credentials
	// Listener, when set, is used instead of listening on BindAddr, so an
	// embedding program can know addresses before nodes start.
	Listener net.Listener

	// MaxBatchTxs, MaxBatchBytes and MaxBatchDelay bound a block: the
	// leader proposes when a block has this many transactions or bytes, or
	// when the first waiting transaction has waited MaxBatchDelay, or as
	// soon as a proposal slot is free if MaxBatchDelay is zero.
	MaxBatchTxs   int
	MaxBatchBytes int
	MaxBatchDelay time.Duration
	// MaxInflight is how many block proposals may await commit at once.
	MaxInflight int

	// Raft timing. Defaults suit a LAN; LoopbackTiming suits tests.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot;
	// SnapshotInterval how often raft checks; TrailingLogs how many
	// entries a snapshot leaves in the log for slow followers.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// SyncFSM fsyncs the chain store on every applied batch (node flag
	// --sync-fsm), so any crash, of the process or the machine, recovers
	// it in place. On in DefaultConfig. Off, the store is written without
	// fsync: the raft log is always fsynced, and after a machine crash the
	// store is rebuilt from the raft snapshot and log, so acknowledged
	// writes survive either way, but each raft snapshot must then be a
	// full copy of the store.
	SyncFSM bool
	// ReferenceSnapshots, with SyncFSM, makes raft snapshots references
	// to the durable chain store instead of copies (node flag
	// --reference-snapshots): O(1) each and nothing copied on disk; a
	// follower that needs one is sent the live store. On in
	// DefaultConfig; without SyncFSM it has no effect (a store written
	// without fsync is always copied). The price: a store damaged at rest
	// cannot be rebuilt from the node's own snapshots, so at start the
	// node takes a healthy peer's verified snapshot instead, and stops
	// with ErrStoreLost if no peer gives one within 2 minutes. Off, a
	// durable store is copied into every snapshot (the mode before
	// reference snapshots, kept for operators who want a local copy to
	// rebuild from).
	ReferenceSnapshots bool

	// CheckWindow is how many of the newest blocks the start check
	// verifies in full before the node serves (0: 64).
	CheckWindow int
	// ScrubInterval is how often the whole chain store is verified again
	// after the verification that follows start (0: never).
	ScrubInterval time.Duration
	// ScrubRate caps the blocks a verification reads per second
	// (0: no cap).
	ScrubRate int
	// CompareInterval is how often a replica compares its block header a
	// few blocks below its head with the other replicas' (0: never).
	CompareInterval time.Duration

	// ApplyTimeout bounds a write from acceptance to commit.
	ApplyTimeout time.Duration
	// RPCTimeout bounds one internal RPC.
	RPCTimeout time.Duration

	// Logger; nil logs nothing.
	Logger hclog.Logger
}

// DefaultConfig returns a config with every tunable set.
func DefaultConfig() Config {
	return Config{
		Groups:             1,
		BindAddr:           "127.0.0.1:7000",
		MaxBatchTxs:        2048,
		MaxBatchBytes:      4 << 20,
		MaxBatchDelay:      0,
		MaxInflight:        4,
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		ApplyTimeout:       10 * time.Second,
		RPCTimeout:         10 * time.Second,
		Role:               RoleVoter,
		GossipBind:         "127.0.0.1:7946",
		ClusterLabel:       "qledger",
		TargetVoters:       3,
		StabilizationTime:  10 * time.Second,
		DeadServerGrace:    30 * time.Second,
		ReconcileInterval:  time.Second,
		RejoinInterval:     30 * time.Second,
		MaxTrailingLogs:    1024,
		CheckWindow:        64,
		ScrubInterval:      6 * time.Hour,
		ScrubRate:          2000,
		CompareInterval:    time.Minute,
		SyncFSM:            true,
		ReferenceSnapshots: true,
	}
}

// LoopbackTiming shortens raft's, gossip's and the reconciler's timers for
// nodes that talk over loopback, as hashicorp/raft's own tests do.
func (c *Config) LoopbackTiming() {
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.GossipLoopback = true
	c.StabilizationTime = time.Second
	c.DeadServerGrace = 2 * time.Second
	c.ReconcileInterval = 200 * time.Millisecond
	c.RejoinInterval = time.Second
}

// DevTiming is LoopbackTiming for a long-running cluster on one machine
// (qledger dev), with raft's timers as a node has them by default
// (DefaultConfig: heartbeat and election timeouts of 1 s, a 500 ms leader
// lease) and a 100 ms commit timeout. Raft sends each follower a
// heartbeat every tenth to fifth of the heartbeat timeout and an
// AppendEntries every one to two commit timeouts even when idle, so with
// the loopback timers an idle 1 × 3 cluster spends 5–7% of a core on
// them, with 500 ms timeouts about 3.5%, with raft's defaults about 3%,
// and with these about 2%; a loaded machine does not start elections.
// Failover takes correspondingly longer (one to two seconds). Commits are
// unaffected: a new entry is sent at once, not at the commit timeout,
// which only bounds how soon an idle follower learns the leader's commit
// index — here up to 200 ms after the last write (100 ms with raft's
// default), so a stale read on a follower, and a function's first run on
// a follower right after its deployment (an executor waits until it has
// applied the deployment's block), may see a write that much later. The
// reconciler runs every second (its health
// probes are RPCs to every member) and the seeds are joined again every
// 10 s (a full gossip state exchange each), instead of the loopback
// profile's 200 ms and 1 s: membership changes and a healed partition's
// merge take up to that much longer. Gossip keeps memberlist's LAN
// timers (a probe a second, a push-pull every 30 s) instead of the
// loopback profile's five probes a second: a node that dies without
// leaving is declared dead after about five seconds instead of one
// (nodes that stop cleanly leave at once either way).
func (c *Config) DevTiming() {
	c.LoopbackTiming()
	d := DefaultConfig()
	c.HeartbeatTimeout = d.HeartbeatTimeout
	c.ElectionTimeout = d.ElectionTimeout
	c.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	c.CommitTimeout = 100 * time.Millisecond
	c.ReconcileInterval = time.Second
	c.RejoinInterval = 10 * time.Second
	c.GossipLoopback = false
}

// Validate reports the first problem with the config.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("cluster: config: DataDir is required")
	case c.Groups < 1 || c.Groups > 1024:
		return fmt.Errorf("cluster: config: Groups must be 1..1024, got %d", c.Groups)
	case c.BindAddr == "" && c.Listener == nil:
		return errors.New("cluster: config: BindAddr is required")
	case c.MaxBatchTxs < 1 || c.MaxBatchTxs > 65536:
		return fmt.Errorf("cluster: config: MaxBatchTxs must be 1..65536, got %d", c.MaxBatchTxs)
	case c.MaxBatchBytes < 1<<20:
		return fmt.Errorf("cluster: config: MaxBatchBytes must be at least 1 MiB, got %d", c.MaxBatchBytes)
	case c.MaxInflight < 1:
		return errors.New("cluster: config: MaxInflight must be at least 1")
	case c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0 || c.CommitTimeout <= 0:
		return errors.New("cluster: config: raft timeouts must be positive")
	case c.ApplyTimeout <= 0 || c.RPCTimeout <= 0:
		return errors.New("cluster: config: ApplyTimeout and RPCTimeout must be positive")
	case c.GossipBind == "":
		return errors.New("cluster: config: GossipBind is required")
	case c.TargetVoters < 1 || c.TargetVoters > 9:
		return fmt.Errorf("cluster: config: TargetVoters must be 1..9, got %d", c.TargetVoters)
	case c.BootstrapExpect < 0 || c.BootstrapExpect > 9:
		return fmt.Errorf("cluster: config: BootstrapExpect must be 0..9, got %d", c.BootstrapExpect)
	case c.CheckWindow < 0 || c.ScrubInterval < 0 || c.ScrubRate < 0 || c.CompareInterval < 0:
		return errors.New("cluster: config: CheckWindow, ScrubInterval, ScrubRate and CompareInterval must not be negative")
	case c.StabilizationTime < 0 || c.DeadServerGrace <= 0 || c.ReconcileInterval <= 0 || c.RejoinInterval <= 0:
		return errors.New("cluster: config: reconciler timings must be positive")
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return err
	}
	if c.Role == RoleExecutor && (c.Bootstrap || c.BootstrapExpect > 0 || len(c.InitialVoters) > 0) {
		return errors.New("cluster: config: an executor never bootstraps a group")
	}
	if c.NodeID != "" {
		if _, err := ParseNodeID(c.NodeID); err != nil {
			return err
		}
	}
	return nil
}
