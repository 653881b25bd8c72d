package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Membership changes group membership. It is the one seam that explicit
// joins use now and gossip-driven reconciliation can use later.
type Membership interface {
	// Join admits node into its group (ID mod n) as a non-voter. Only the
	// group leader's reconciler gives a vote, under its rules.
	Join(ctx context.Context, node NodeInfo) (JoinResponse, error)
	// Remove takes a node out of its group's raft configuration.
	Remove(ctx context.Context, id string) error
}

var _ Membership = (*Node)(nil)

// JoinRequest asks for admission.
type JoinRequest struct {
	Node NodeInfo `json:"node"`
	Hops int      `json:"hops"`
}

// JoinResponse answers a join. Bootstrap tells the new node that no node
// of its group is known, so it starts the group itself.
type JoinResponse struct {
	Bootstrap bool       `json:"bootstrap"`
	Directory []dirEntry `json:"directory"`
}

// RemoveRequest asks for a node's removal.
type RemoveRequest struct {
	ID   string `json:"id"`
	Hops int    `json:"hops"`
	// Since, when set, is the start of the incarnation the removal is
	// for (a leaving node's own): the leader refuses it if gossip shows
	// the node alive as a later incarnation. A partition can hold back a
	// leaving node's request past its exit (its socket keeps sending) and
	// deliver it once the node has started again.
	Since int64 `json:"since,omitempty"`
}

// Join admits a node from any node: the request travels to the leader of
// the new node's group, which adds it as a raft non-voter. A vote comes
// only from the reconciler, under its rules: the node must be alive in
// gossip with the voter role, healthy for StabilizationTime, and the group
// below TargetVoters or replacing a failed voter. A node that is already a
// member with the same address is accepted as is, whatever its suffrage;
// one known under the same ID at another address, or another ID at the
// same address, is replaced by a non-voter.
func (n *Node) Join(ctx context.Context, node NodeInfo) (JoinResponse, error) {
	return n.join(ctx, JoinRequest{Node: node})
}

func (n *Node) join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	node := req.Node
	id, err := ParseNodeID(node.ID)
	if err != nil {
		return JoinResponse{}, err
	}
	// With TLS, a node asks to join under the ID in its own certificate;
	// a forwarded join (Hops > 0) comes from a node that checked that.
	if peer, ok := peerNode(ctx); ok && req.Hops == 0 && peer != node.ID {
		return JoinResponse{}, fmt.Errorf("%w: a join for node %s from a certificate for node %.12s", ErrWrongNode, id.Short(), peer)
	}
	if g := id.Group(n.cfg.Groups); g != node.Group {
		return JoinResponse{}, fmt.Errorf("%w: node %s belongs to group %d, not %d (do both sides use the same number of groups?)", ErrBadRequest, id.Short(), g, node.Group)
	}
	if node.Addr == "" {
		return JoinResponse{}, fmt.Errorf("%w: join without an address", ErrBadRequest)
	}
	if n.gossip != nil {
		if at, alive := n.gossip.aliveElsewhere(node.ID, node.Addr); alive {
			return JoinResponse{}, fmt.Errorf("%w: node %s is alive at %s, refusing a join from %s", ErrIDConflict, id.Short(), at, node.Addr)
		}
	}
	if req.Hops >= maxHops {
		return JoinResponse{}, fmt.Errorf("%w: join forwarded too many times", ErrNoLeader)
	}
	n.dir.merge([]dirEntry{{NodeInfo: node, Epoch: time.Now().UnixNano()}})
	resp := JoinResponse{Directory: n.dir.all()}
	if node.Group != n.group {
		members := n.dir.inGroup(node.Group)
		var others []NodeInfo
		for _, m := range members {
			if m.ID != node.ID {
				others = append(others, m)
			}
		}
		if len(others) == 0 {
			resp.Bootstrap = true
			return resp, nil
		}
		var last error
		for _, m := range others {
			var r JoinResponse
			err := n.client.call(ctx, m.Addr, mJoin, JoinRequest{Node: node, Hops: req.Hops + 1}, &r)
			if err == nil {
				r.Directory = append(r.Directory, resp.Directory...)
				return r, nil
			}
			if !isTransport(err) {
				return JoinResponse{}, err
			}
			last = err
		}
		return JoinResponse{}, last
	}
	if !n.IsLeader() {
		leader, ok := n.Leader()
		if !ok {
			return JoinResponse{}, fmt.Errorf("%w: group %d", ErrNoLeader, n.group)
		}
		var r JoinResponse
		err := n.client.call(ctx, leader.Addr, mJoin, JoinRequest{Node: node, Hops: req.Hops + 1}, &r)
		return r, err
	}
	if err := n.addNonvoter(node); err != nil {
		return JoinResponse{}, err
	}
	n.logger.Info("node joined as non-voter", "joined", id.Short(), "addr", node.Addr)
	return resp, nil
}

// addNonvoter adds node to this group's configuration as a non-voter,
// first removing stale entries for its ID or its address. It must run on
// the group leader.
func (n *Node) addNonvoter(node NodeInfo) error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.convert(err)
	}
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := string(s.ID) == node.ID, string(s.Address) == node.Addr
		if sameID && sameAddr {
			return nil
		}
		if sameID || sameAddr {
			n.logger.Info("replacing stale raft server", "id", s.ID, "addr", s.Address)
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return n.convert(err)
			}
		}
	}
	return n.convert(n.raft.AddNonvoter(raft.ServerID(node.ID), raft.ServerAddress(node.Addr), 0, n.cfg.ApplyTimeout).Error())
}

// Remove takes node id out of its group, from any node.
func (n *Node) Remove(ctx context.Context, id string) error {
	return n.remove(ctx, RemoveRequest{ID: id})
}

func (n *Node) remove(ctx context.Context, req RemoveRequest) error {
	nid, err := ParseNodeID(req.ID)
	if err != nil {
		return err
	}
	if req.Hops >= maxHops {
		return fmt.Errorf("%w: remove forwarded too many times", ErrNoLeader)
	}
	g := nid.Group(n.cfg.Groups)
	if g != n.group {
		return n.forwardRemove(ctx, req, g, fmt.Errorf("%w: group %d", ErrUnknownGroup, g))
	}
	if !n.IsLeader() {
		leader, ok := n.Leader()
		if !ok {
			// Raft has not named a leader to this node yet (a node just
			// added learns it from its first heartbeat): ask the group's
			// other members, the leader gossip names first.
			return n.forwardRemove(ctx, req, g, fmt.Errorf("%w: group %d", ErrNoLeader, n.group))
		}
		err := n.client.call(ctx, leader.Addr, mRemove, RemoveRequest{ID: req.ID, Hops: req.Hops + 1, Since: req.Since}, nil)
		if err == nil {
			n.dir.markRemoved(req.ID)
		}
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.convert(err)
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || string(s.ID) == req.ID
	}
	if !found {
		return fmt.Errorf("%w: node %s is not a member of group %d", ErrNotFound, nid.Short(), g)
	}
	if now, ok := n.laterIncarnation(req); ok {
		return fmt.Errorf("%w: node %s asked to leave as the incarnation started at %d, which has ended (alive since %d); not removed", ErrNotFound, nid.Short(), req.Since, now)
	}
	if err := n.raft.RemoveServer(raft.ServerID(req.ID), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return n.convert(err)
	}
	n.dir.markRemoved(req.ID)
	n.logger.Info("node removed", "removed", nid.Short())
	return nil
}

// laterIncarnation reports whether gossip shows the node req removes
// alive as another incarnation than the one req is for, and when that one
// started.
func (n *Node) laterIncarnation(req RemoveRequest) (int64, bool) {
	if req.Since == 0 || n.gossip == nil {
		return 0, false
	}
	m, ok := n.gossip.view()[req.ID]
	if !ok || (m.state != stateAlive && m.state != stateSuspect) || m.meta.Since == 0 || m.meta.Since == req.Since {
		return 0, false
	}
	return m.meta.Since, true
}

// forwardRemove asks the members of group g that the directory knows,
// other than this node, to remove req.ID, until one answers other than
// with a transport error; none is an error (none, if there is no member
// to ask).
func (n *Node) forwardRemove(ctx context.Context, req RemoveRequest, g int, none error) error {
	last := none
	for _, m := range n.dir.inGroup(g) {
		if m.ID == n.info.ID {
			continue
		}
		err := n.client.call(ctx, m.Addr, mRemove, RemoveRequest{ID: req.ID, Hops: req.Hops + 1, Since: req.Since}, nil)
		if err == nil {
			n.dir.markRemoved(req.ID)
			return nil
		}
		if !isTransport(err) {
			return err
		}
		last = err
	}
	return last
}

// handlers is the internal RPC method table.
func (n *Node) handlers() map[method]rpcHandler {
	return map[method]rpcHandler{
		mSubmit:      n.handleSubmit,
		mSubmitBatch: n.handleSubmitBatch,
		mJoin: func(ctx context.Context, body []byte) (any, error) {
			var req JoinRequest
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			return n.join(ctx, req)
		},
		mRemove: func(ctx context.Context, body []byte) (any, error) {
			var req RemoveRequest
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			return struct{}{}, n.remove(ctx, req)
		},
		mQuery: func(ctx context.Context, body []byte) (any, error) {
			var q Query
			if err := unmarshal(body, &q); err != nil {
				return nil, err
			}
			return n.query(ctx, q)
		},
		mStatus: func(ctx context.Context, body []byte) (any, error) {
			return n.localStatus(), nil
		},
		mElectCommit: func(ctx context.Context, body []byte) (any, error) {
			var req commitReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			h, err := n.commitNonce(req.RequestID[:])
			return commitResp{NodeID: n.info.ID, H: h}, err
		},
		mElectReveal: func(ctx context.Context, body []byte) (any, error) {
			var req commitReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			nonce, err := n.revealNonce(req.RequestID[:])
			return revealResp{NodeID: n.info.ID, Nonce: nonce}, err
		},
		mElectNonce:     n.handleElectNonce,
		mElectRevealRun: n.handleRevealRun,
		mExecute: func(ctx context.Context, body []byte) (any, error) {
			var req execReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			n.running.Add(1)
			defer n.running.Add(-1)
			return n.execLocal(ctx, req), nil
		},
		mInvoke: func(ctx context.Context, body []byte) (any, error) {
			var req InvokeRequest
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			return n.serveInvoke(ctx, req)
		},
		mInvokeBinary: n.handleInvokeBinary,
		mScrub:        n.handleOnReplica(n.ScrubLocal),
		mRepair:       n.handleOnReplica(n.RepairLocal),
		mHeaderAt: func(ctx context.Context, body []byte) (any, error) {
			var req headerAtReq
			if err := unmarshal(body, &req); err != nil {
				return nil, err
			}
			return n.headerAt(req.Height)
		},
		mHealth: func(ctx context.Context, body []byte) (any, error) {
			if n.leaving.Load() {
				return nil, fmt.Errorf("%w: the node is leaving", ErrShutdown)
			}
			h := Health{ID: n.info.ID, Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(), Applied: n.raft.AppliedIndex(), CPU: processCPU.utilization()}
			if a := n.chainAlarm(); a != nil {
				h.ChainAlarm = fmt.Sprintf("height %d: %s", a.Height, a.What)
			}
			return h, nil
		},
	}
}

var errNoStatus = errors.New("cluster: no node of the group answered")
