package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"qledger/fsm"
)

// A replica whose raft snapshots are references to its chain store
// (SyncFSM with ReferenceSnapshots) cannot rebuild a store found damaged
// at start from them. Before raft starts, it takes the store from a
// healthy peer instead: the members of the group's latest raft
// configuration, asked in turn over the snapshot connection (a peer with
// an alarm raised refuses, and every peer verifies what it sends), for
// up to reseedWait. The copy is verified in full and must hold every
// entry the node's raft snapshot covers (raft resumes after that
// snapshot's index without restoring it); then it becomes the store.

// reseedWait bounds how long a start waits for a healthy peer's snapshot.
const reseedWait = 2 * time.Minute

// reseedFromPeers writes a healthy peer's verified snapshot to path (the
// chain store, set aside beforehand). On failure path is left absent.
func (n *Node) reseedFromPeers(path string, logs raft.LogStore, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return fmt.Errorf("cluster: no raft snapshot to resume from: %v", err)
	}
	snapIndex := metas[0].Index
	peers := configuredPeers(metas[0], logs, n.info.ID)
	if len(peers) == 0 {
		return errors.New("cluster: the group's raft configuration names no other member")
	}
	ctx, cancel := context.WithTimeout(context.Background(), reseedWait)
	defer cancel()
	ctx, stopped := n.untilStop(ctx)
	defer stopped()
	var errs []error
	for ctx.Err() == nil {
		errs = errs[:0]
		for _, p := range peers {
			n.logger.Warn("taking the chain store from a peer's snapshot", "peer", shortID(p.ID), "addr", p.Addr)
			err := n.peerSnapshot(ctx, p, func(r io.Reader) error { return n.writeSeed(path, r, snapIndex) })
			if err == nil {
				return nil
			}
			os.Remove(path)
			n.logger.Warn("no usable snapshot from the peer", "peer", shortID(p.ID), "error", err)
			errs = append(errs, fmt.Errorf("from %.12s: %w", p.ID, err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return errors.Join(errs...)
}

// writeSeed writes the snapshot r to path, verifies it in full and
// checks that it holds every entry up to snapIndex.
func (n *Node) writeSeed(path string, r io.Reader, snapIndex uint64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := fsm.VerifyFile(path, uint32(n.group)); err != nil {
		return fmt.Errorf("snapshot refused: %w", err)
	}
	s, err := fsm.OpenStoreReadOnly(path)
	if err != nil {
		return err
	}
	applied, err := s.AppliedIndex()
	s.Close()
	if err != nil {
		return err
	}
	if applied < snapIndex {
		return fmt.Errorf("snapshot applied to %d, behind this node's raft snapshot at %d", applied, snapIndex)
	}
	return nil
}

// configuredPeers lists the other servers of the group's latest raft
// configuration: the snapshot's, or a configuration entry in the log
// after it.
func configuredPeers(meta *raft.SnapshotMeta, logs raft.LogStore, self string) []NodeInfo {
	cfg := meta.Configuration
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	for i := max(first, meta.Index+1); i <= last && i > 0; i++ {
		var l raft.Log
		if logs.GetLog(i, &l) == nil && l.Type == raft.LogConfiguration {
			cfg = raft.DecodeConfiguration(l.Data)
		}
	}
	var out []NodeInfo
	for _, s := range cfg.Servers {
		if string(s.ID) != self {
			out = append(out, NodeInfo{ID: string(s.ID), Addr: string(s.Address)})
		}
	}
	return out
}
