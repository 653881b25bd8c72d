package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"qledger/cluster"
)

func (a *app) snapshotCmd() *cobra.Command {
	return a.clientGroup(group("snapshot", "save | verify | restore: consistent, checksummed backups of a group's chain",
		a.snapshotSaveCmd(), a.snapshotVerifyCmd(), a.snapshotRestoreCmd()))
}

func (a *app) snapshotSaveCmd() *cobra.Command {
	var g int
	cmd := &cobra.Command{
		Use:   "save --group G FILE",
		Short: "save a consistent copy of group G's chain from its leader, verified before it is written (admin)",
		Long: `Save a consistent copy of group G's chain store, taken from the group's
leader in one read transaction while writes go on (the bytes a raft
snapshot carries). The copy is verified in full (every block, link,
transaction root, log root and the recorded head) before FILE is written,
with a header giving its head and SHA-256; 'qledger snapshot verify FILE'
checks it again offline.`,
		Args: argsUsage(1, 1, "usage: qledger snapshot save --group G FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if g < 0 {
				return usageErrorf("usage: qledger snapshot save --group G FILE")
			}
			return a.snapshotSave(g, args[0])
		},
	}
	cmd.Flags().IntVar(&g, "group", -1, "the group [required]")
	return cmd
}

// snapshotSave streams group g's store from its leader into a temporary
// file beside path, verifies it, and writes the snapshot file.
func (a *app) snapshotSave(g int, path string) error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	_, leader, err := groupLeader(ctx, c, g)
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	lc, err := a.client.clientAt(leader.APIAddr)
	if err != nil {
		return err
	}
	tmp, remove, err := tempStore(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer remove()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	start := time.Now()
	_, err = lc.Snapshot(ctx, g, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	h, err := describeStore(tmp, uint32(g))
	if err != nil {
		return fmt.Errorf("snapshot save: nothing written: %w", err)
	}
	h.Created, h.Source = time.Now().UTC(), leader.APIAddr
	if err := writeSnapshotFile(path, h, tmp); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if a.out.JSON() {
		return a.printJSON(h)
	}
	fmt.Fprintf(a.stdout, "saved group %d at height %d (%d transactions, log size %d) from %s to %s: %d bytes, sha256 %s, verified, in %s\n",
		g, h.Height, h.Txs, h.LogSize, short(leader.ID), path, h.Bytes, h.SHA256, time.Since(start).Round(time.Millisecond))
	return nil
}

func (a *app) snapshotVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE",
		Short: "check a snapshot offline: header, size, checksum, and the whole chain against its head",
		Args:  argsUsage(1, 1, "usage: qledger snapshot verify FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			tmp, remove, err := tempStore(os.TempDir())
			if err != nil {
				return err
			}
			defer remove()
			h, err := readSnapshotFile(args[0], tmp)
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(h)
			}
			fmt.Fprintf(a.stdout, "%s: ok  group %d  height %d  %d transactions  head %s  sha256 %s  taken %s from %s\n",
				args[0], h.Group, h.Height, h.Txs, orUnknown(h.Head), h.SHA256, h.Created.Format(time.RFC3339), orUnknown(h.Source))
			return nil
		},
	}
}

// restoreOptions are the flags of snapshot restore.
type restoreOptions struct {
	data, id, addr string
	groups         int
}

func (a *app) snapshotRestoreCmd() *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore FILE --data DIR --groups N [--id ID] [--advertise HOST:PORT]",
		Short: "seed a new node's data directory from a snapshot: it starts as its group's only voter",
		Long: `Check FILE as 'snapshot verify' does, then prepare the empty data directory
DIR so that 'qledger node --data DIR' starts group G again from it: the
chain becomes a raft snapshot whose configuration holds this node as the
group's only voter, installed (and verified again) when the node starts.
Nodes that join the group afterwards receive it. Give the node's ID with
--id (with certificates: the ID in its certificate; default: one drawn in
the snapshot's group) and the raft address it will advertise.`,
		Args: argsUsage(1, 1, "usage: qledger snapshot restore FILE --data DIR --groups N [--id ID] [--advertise HOST:PORT]"),
		RunE: func(_ *cobra.Command, args []string) error {
			if o.data == "" || o.groups < 1 {
				return usageErrorf("snapshot restore: --data and --groups are required")
			}
			return a.snapshotRestore(args[0], o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.data, "data", "", "the new node's data directory, empty or absent [required]")
	fs.IntVar(&o.groups, "groups", 0, "the cluster's number of groups [required]")
	fs.StringVar(&o.id, "id", "", "the node's ID, 64 hex digits (default: drawn in the snapshot's group)")
	fs.StringVar(&o.addr, "advertise", "127.0.0.1:7000", "the raft/RPC address the node will advertise (its --advertise, or --bind)")
	return cmd
}

func (a *app) snapshotRestore(file string, o restoreOptions) error {
	tmp, remove, err := tempStore(os.TempDir())
	if err != nil {
		return err
	}
	defer remove()
	h, err := readSnapshotFile(file, tmp)
	if err != nil {
		return err
	}
	id, err := cluster.Seed(cluster.SeedConfig{DataDir: o.data, Store: tmp, Group: int(h.Group), Groups: o.groups, NodeID: o.id, Addr: o.addr})
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	if a.out.JSON() {
		return a.printJSON(map[string]any{"data": o.data, "node": id.String(), "snapshot": h})
	}
	fmt.Fprintf(a.stdout, "%s seeded from %s: group %d at height %d, node %s as its only voter at %s\nstart it with: qledger node --data %s --groups %d --bind %s ...; other nodes join it\n",
		o.data, file, h.Group, h.Height, id, o.addr, o.data, o.groups, o.addr)
	return nil
}
