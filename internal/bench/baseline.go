package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"qledger/cluster"
)

// ErrNoLeader is a baseline group without a leader.
var ErrNoLeader = errors.New("bench: baseline group has no leader")

// Baseline is a bare hashicorp/raft group with raft-boltdb stores, the
// raft timing of a cluster.Config, raft's TCP transport with the pool and
// timeout a node's transport uses, and a state machine that ignores every
// entry. Benchmarks measure the ledger against it: one raft entry per
// client operation, nothing else. (A node's transport also reads one
// first byte per connection to multiplex raft and RPC on one listener;
// connections are pooled, so that byte is not per operation.)
type Baseline struct {
	rafts   []*raft.Raft
	stores  []*raftboltdb.BoltStore
	trans   []*raft.NetworkTransport
	timeout time.Duration
	closed  atomic.Bool
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) interface{}         { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}

// logCacheSize is the raft log entries kept in memory, as a node keeps.
const logCacheSize = 1024

// StartBaseline starts replicas bare raft servers under dir with base's
// raft timing and waits for a leader.
func StartBaseline(ctx context.Context, dir string, replicas int, base cluster.Config) (*Baseline, error) {
	b := &Baseline{timeout: base.ApplyTimeout}
	var servers []raft.Server
	for i := 0; i < replicas; i++ {
		tr, err := raft.NewTCPTransportWithConfig("127.0.0.1:0", nil, &raft.NetworkTransportConfig{MaxPool: 8, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("bench: baseline transport: %w", err)
		}
		b.trans = append(b.trans, tr)
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint("baseline-", i)), Address: tr.LocalAddr(), Suffrage: raft.Voter})
	}
	for i := 0; i < replicas; i++ {
		if err := b.startServer(filepath.Join(dir, fmt.Sprint("baseline-", i)), i, servers, base); err != nil {
			b.Close()
			return nil, err
		}
	}
	for b.leader() == nil {
		select {
		case <-ctx.Done():
			b.Close()
			return nil, fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return b, nil
}

func (b *Baseline) leader() *raft.Raft {
	for _, r := range b.rafts {
		if r.State() == raft.Leader {
			return r
		}
	}
	return nil
}

// Apply commits one entry through the leader and waits for it to apply.
// Like the ledger's writes it follows leadership: an entry refused
// because there is no leader, or because leadership moved while it was
// sent, goes again to the next leader, within the apply timeout. (The
// ledger's retries are deduplicated; the baseline's state machine ignores
// its entries, so an entry that committed twice costs only time.) After
// Close it fails with ErrNoLeader at once.
func (b *Baseline) Apply(data []byte) error {
	deadline := time.Now().Add(b.timeout)
	for {
		err := ErrNoLeader
		if r := b.leader(); r != nil {
			err = r.Apply(data, time.Until(deadline)).Error()
		}
		if err == nil || !leadershipMoved(err) || b.closed.Load() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leadershipMoved reports the errors after which an entry goes to the
// next leader.
func leadershipMoved(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout)
}

// startServer starts server i of servers with its store at path and
// bootstraps it with the whole configuration.
func (b *Baseline) startServer(path string, i int, servers []raft.Server, base cluster.Config) error {
	store, err := raftboltdb.New(raftboltdb.Options{Path: path + "-raft.db"})
	if err != nil {
		return fmt.Errorf("bench: baseline store: %w", err)
	}
	b.stores = append(b.stores, store)
	rc := raft.DefaultConfig()
	rc.LocalID = servers[i].ID
	rc.HeartbeatTimeout, rc.ElectionTimeout = base.HeartbeatTimeout, base.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = base.LeaderLeaseTimeout, base.CommitTimeout
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotThreshold = base.SnapshotThreshold
	rc.TrailingLogs = base.TrailingLogs
	rc.Logger = hclog.NewNullLogger()
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	r, err := raft.NewRaft(rc, nopFSM{}, logs, store, raft.NewInmemSnapshotStore(), b.trans[i])
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	b.rafts = append(b.rafts, r)
	return r.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
}

// Close stops every server.
func (b *Baseline) Close() {
	b.closed.Store(true)
	for _, r := range b.rafts {
		r.Shutdown().Error()
	}
	for _, t := range b.trans {
		t.Close()
	}
	for _, s := range b.stores {
		s.Close()
	}
}
