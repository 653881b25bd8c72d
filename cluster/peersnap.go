package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A replica whose own raft log no longer holds what a rebuild of its
// chain store needs takes a healthy peer's snapshot instead: a connection
// of type connSnapshot asks a member of its group for the bytes a raft
// snapshot of the group carries (the same FSM snapshot raft sends in
// InstallSnapshot), and fsm.FSM.Rebuild verifies them in full before it
// uses them. With TLS only nodes of the cluster CA reach the mux.

// snapshotIdle bounds how long a snapshot stream may stall.
const snapshotIdle = 30 * time.Second

// Answers to a snapshot request, the first byte the server writes.
const (
	snapOK      byte = 0
	snapRefused byte = 1 // followed by a reason, up to the end
)

// serveSnapshots answers snapshot requests until the mux closes.
func (n *Node) serveSnapshots() {
	ln := n.mux.subs[connSnapshot]
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer c.Close()
			if err := n.serveSnapshot(c); err != nil {
				n.logger.Warn("snapshot for a peer not sent", "peer", c.RemoteAddr(), "error", err)
			}
		}()
	}
}

// serveSnapshot reads the group asked for and streams this replica's
// snapshot, or refuses: another group, or a raised alarm (a damaged
// replica is never a source; fsm.FSM.Snapshot also refuses a store marked
// damaged, and Persist checks the newest blocks of the copy).
func (n *Node) serveSnapshot(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return err
	}
	refuse := func(reason string) error {
		_, _ = c.Write(append([]byte{snapRefused}, reason...))
		return errors.New(reason)
	}
	if g := int(binary.BigEndian.Uint32(req[:])); g != n.group {
		return refuse(fmt.Sprintf("node %s is in group %d, not %d", n.id.Short(), n.group, g))
	}
	if a := n.chainAlarm(); a != nil {
		return refuse(a.Error())
	}
	w := bufio.NewWriterSize(&idleConn{Conn: c}, 256<<10)
	if err := w.WriteByte(snapOK); err != nil {
		return err
	}
	if err := n.WriteSnapshot(w); err != nil {
		return err
	}
	return w.Flush()
}

// idleConn moves the connection's deadline on before every read and
// write, so a stream may take as long as it needs but never stall.
type idleConn struct{ net.Conn }

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.SetDeadline(time.Now().Add(snapshotIdle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.SetDeadline(time.Now().Add(snapshotIdle))
	return c.Conn.Write(p)
}

// errNoSource: no member of the group could be asked for a snapshot.
var errNoSource = errors.New("cluster: no healthy replica to take a snapshot from")

// rebuildFromPeer rebuilds the chain store from a healthy peer's
// snapshot and this replica's raft log after it: the group leader first,
// then the other members; members gossip shows alarmed are skipped, and a
// source that finds itself damaged refuses. Each snapshot is verified in
// full before it is used (fsm.FSM.Rebuild); one that fails verification,
// or that the log cannot continue, leaves the store as it was and the
// next member is tried.
func (n *Node) rebuildFromPeer(ctx context.Context) error {
	errs := []error{errNoSource}
	for _, src := range n.snapshotSources() {
		n.logger.Warn("rebuilding the chain store from a peer's snapshot", "peer", src.ID[:12])
		err := n.rebuildFrom(ctx, src)
		if err == nil {
			return nil
		}
		n.logger.Warn("rebuild from a peer's snapshot failed", "peer", src.ID[:12], "error", err)
		errs = append(errs, fmt.Errorf("from %.12s: %w", src.ID, err))
	}
	return errors.Join(errs...)
}

// snapshotSources lists the group's other members without a gossiped
// alarm, the leader first.
func (n *Node) snapshotSources() []NodeInfo {
	var view map[string]member
	if n.gossip != nil {
		view = n.gossip.view()
	}
	alarmed := func(id string) bool { m, ok := view[id]; return ok && m.meta.Corrupt != "" }
	leader, hasLeader := n.Leader()
	var out []NodeInfo
	if hasLeader && leader.ID != n.info.ID && !alarmed(leader.ID) {
		out = append(out, leader)
	}
	for _, m := range n.dir.inGroup(n.group) {
		if m.ID != n.info.ID && (!hasLeader || m.ID != leader.ID) && !alarmed(m.ID) {
			out = append(out, m)
		}
	}
	return out
}

// rebuildFrom asks src for its snapshot and rebuilds from it.
func (n *Node) rebuildFrom(ctx context.Context, src NodeInfo) error {
	return n.peerSnapshot(ctx, src, func(r io.Reader) error {
		return n.fsm.Rebuild(ctx, r, n.logStore, n.raft.AppliedIndex)
	})
}

// peerSnapshot asks src for its snapshot and hands the stream to use.
func (n *Node) peerSnapshot(ctx context.Context, src NodeInfo, use func(io.Reader) error) error {
	c, err := dialer{creds: n.cfg.TLS}.dial(ctx, src.Addr, connSnapshot, n.cfg.RPCTimeout, src.ID)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	conn := &idleConn{Conn: c}
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(n.group))); err != nil {
		return err
	}
	r := bufio.NewReaderSize(conn, 256<<10)
	status, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("no snapshot (the peer failed to take one; its log says why): %w", err)
	}
	if status != snapOK {
		reason, _ := io.ReadAll(io.LimitReader(r, 1024))
		return fmt.Errorf("refused: %s", reason)
	}
	return use(r)
}
