package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Baseline is a bare hashicorp/raft group with raft-boltdb stores, the same
// transport and raft settings as a Node, and a state machine that ignores
// every entry. Benchmarks measure the ledger against it: one raft entry per
// client operation, nothing else.
type Baseline struct {
	rafts   []*raft.Raft
	stores  []*raftboltdb.BoltStore
	trans   []*raft.NetworkTransport
	timeout time.Duration
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) interface{}         { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}

// StartBaseline starts replicas bare raft servers under dir with base's
// raft timing and waits for a leader.
func StartBaseline(ctx context.Context, dir string, replicas int, base Config) (*Baseline, error) {
	b := &Baseline{timeout: base.ApplyTimeout}
	var servers []raft.Server
	var layers []*raftLayer
	for i := 0; i < replicas; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Close()
			return nil, err
		}
		m := newMux(ln, hclog.NewNullLogger(), connRaft)
		go m.serve()
		layers = append(layers, &raftLayer{subListener: m.subs[connRaft], advertise: ln.Addr()})
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint("baseline-", i)), Address: raft.ServerAddress(ln.Addr().String()), Suffrage: raft.Voter})
	}
	for i := 0; i < replicas; i++ {
		d := filepath.Join(dir, fmt.Sprint("baseline-", i))
		store, err := raftboltdb.New(raftboltdb.Options{Path: d + "-raft.db"})
		if err != nil {
			b.Close()
			return nil, err
		}
		b.stores = append(b.stores, store)
		tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layers[i], MaxPool: 8, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
		b.trans = append(b.trans, tr)
		rc := raft.DefaultConfig()
		rc.LocalID = servers[i].ID
		rc.HeartbeatTimeout, rc.ElectionTimeout = base.HeartbeatTimeout, base.ElectionTimeout
		rc.LeaderLeaseTimeout, rc.CommitTimeout = base.LeaderLeaseTimeout, base.CommitTimeout
		rc.BatchApplyCh = true
		rc.MaxAppendEntries = 256
		rc.SnapshotThreshold = base.SnapshotThreshold
		rc.TrailingLogs = base.TrailingLogs
		rc.Logger = hclog.NewNullLogger()
		snaps := raft.NewInmemSnapshotStore()
		logs, err := raft.NewLogCache(logCacheSize, store)
		if err != nil {
			b.Close()
			return nil, err
		}
		r, err := raft.NewRaft(rc, nopFSM{}, logs, store, snaps, tr)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.rafts = append(b.rafts, r)
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			b.Close()
			return nil, err
		}
	}
	for b.leader() == nil {
		select {
		case <-ctx.Done():
			b.Close()
			return nil, fmt.Errorf("%w: baseline group", ErrNoLeader)
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
func (b *Baseline) Apply(data []byte) error {
	r := b.leader()
	if r == nil {
		return ErrNoLeader
	}
	return r.Apply(data, b.timeout).Error()
}

// Close stops every server.
func (b *Baseline) Close() {
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
