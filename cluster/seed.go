package cluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"qledger/fsm"
)

// SeedConfig prepares a data directory to start a group again from a
// saved chain store (qledger snapshot restore).
type SeedConfig struct {
	// DataDir must hold no node state yet (no raft log, snapshots or
	// chain store).
	DataDir string
	// Store is the chain store file to start from, verified by the caller;
	// the node verifies it again in full when it installs it.
	Store string
	// Group is the store's group, Groups the cluster's number of groups.
	Group, Groups int
	// NodeID is the node's ID (with certificates: the one in its
	// certificate); empty: one drawn in Group. It must be in Group.
	NodeID string
	// Addr is the raft/RPC address the node will advertise.
	Addr string
}

// Seed writes the store into c.DataDir as the node's chain store and as a
// raft snapshot at the raft index the store has applied, whose
// configuration has this node as the group's only voter: the node started
// on the directory resumes from the store, leads the group, and sends the
// snapshot to every node that joins (which verifies it in full before
// installing it). It returns the node's ID.
func Seed(c SeedConfig) (NodeID, error) {
	for _, name := range []string{"raft.db", "chain.db", "snapshots"} {
		if _, err := os.Stat(filepath.Join(c.DataDir, name)); err == nil {
			return NodeID{}, fmt.Errorf("%w: %s holds %s", ErrNotEmpty, c.DataDir, name)
		}
	}
	if c.Groups < 1 || c.Group < 0 || c.Group >= c.Groups || c.Addr == "" {
		return NodeID{}, fmt.Errorf("%w: seed: need 0 <= group < groups and an address", ErrBadRequest)
	}
	applied, err := storeApplied(c.Store)
	if err != nil {
		return NodeID{}, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return NodeID{}, fmt.Errorf("cluster: %w", err)
	}
	id, err := loadOrCreateID(c.DataDir, c.NodeID, func() NodeID { return NewNodeIDInGroup(c.Group, c.Groups) })
	if err != nil {
		return id, err
	}
	if id.Group(c.Groups) != c.Group {
		return id, fmt.Errorf("%w: node %s is in group %d of %d, the store is group %d's", ErrBadRequest, id.Short(), id.Group(c.Groups), c.Groups, c.Group)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.DataDir, 2, hclog.NewNullLogger())
	if err != nil {
		return id, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(id.String()), Address: raft.ServerAddress(c.Addr), Suffrage: raft.Voter}}}
	// Create encodes the legacy peer list through a transport; any one
	// encodes an address as its bytes, as the node's own does.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(c.Addr))
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, applied, 1, conf, applied, trans)
	if err != nil {
		return id, fmt.Errorf("cluster: seed snapshot: %w", err)
	}
	if err := copyInto(sink, c.Store); err != nil {
		sink.Cancel()
		return id, fmt.Errorf("cluster: seed snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return id, fmt.Errorf("cluster: seed snapshot: %w", err)
	}
	// The node resumes from a trusted chain store rather than reloading
	// the snapshot (see Open): the store, as of the snapshot's index, with
	// the clean-stop marker.
	if err := copyFile(filepath.Join(c.DataDir, "chain.db"), c.Store); err != nil {
		return id, fmt.Errorf("cluster: seed chain store: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.DataDir, cleanMarker), []byte("clean\n"), 0o600); err != nil {
		return id, fmt.Errorf("cluster: seed: %w", err)
	}
	return id, nil
}

// copyFile copies src to dst and syncs it.
func copyFile(dst, src string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := copyInto(f, src); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// storeApplied is the raft index the store at path has applied (at least
// 1: a raft snapshot needs an index).
func storeApplied(path string) (uint64, error) {
	s, err := fsm.OpenStoreReadOnly(path)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	applied, err := s.AppliedIndex()
	return max(applied, 1), err
}

func copyInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
