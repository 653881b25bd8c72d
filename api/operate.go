package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"qledger/api/client"
	"qledger/cluster"
)

// The operator endpoints: hand a group's leadership over, and make this
// node leave the cluster.

// LeadershipTransferrer is the optional ability of a node to hand its
// group's leadership to another voter (*cluster.Node has it). It must run
// on the group's leader.
type LeadershipTransferrer interface {
	// TransferLeadershipTo hands leadership to the voter to, or to any
	// voter if to is empty, and returns the new leader ("" if not yet
	// known when ctx ends).
	TransferLeadershipTo(ctx context.Context, to string) (string, error)
	// Group is the node's group.
	Group() int
}

// Leaver makes the node this API serves leave the cluster gracefully and
// then stop its process (server.Node is one).
type Leaver interface {
	// Leave hands over leadership, leaves the group's raft configuration
	// and gossip, and returns; the process stops afterwards.
	Leave(ctx context.Context) error
}

// transferWait bounds how long a transfer waits to hear from the new
// leader before answering without naming it.
const transferWait = 10 * time.Second

// Snapshotter is the optional ability of a node to write a consistent
// copy of its group's chain store (*cluster.Node has it).
type Snapshotter interface {
	WriteSnapshot(w io.Writer) error
	Group() int
}

func (s *Server) operateRoutes() {
	s.route("GET", "/v1/groups/{g}/snapshot", admins, s.snapshot)
	s.route("POST", "/v1/groups/{g}/leader/transfer", admins, s.transferLeader)
	s.route("POST", "/v1/node/leave", admins, s.leave)
}

// transferLeader hands group g's leadership over and answers with the new
// leader. It must reach the leader of g: anywhere else it is 503
// no_leader, and the caller asks GET /v1/cluster where the leader is.
func (s *Server) transferLeader(w http.ResponseWriter, r *http.Request) {
	g, err := strconv.Atoi(r.PathValue("g"))
	if err != nil {
		s.fail(w, r, badRequest("group %q is not a number", r.PathValue("g")))
		return
	}
	var req client.TransferLeaderRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	lt, ok := s.members.(LeadershipTransferrer)
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "this node cannot transfer leadership")
		return
	}
	if lt.Group() != g {
		s.fail(w, r, fmt.Errorf("%w: this node is in group %d, not %d; ask group %d's leader (GET /v1/cluster names it)", cluster.ErrNotLeader, lt.Group(), g, g))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), transferWait)
	defer cancel()
	leader, err := lt.TransferLeadershipTo(ctx, req.To)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.TransferLeaderResult{Group: g, Leader: leader})
}

// snapshot streams a consistent copy of group g's chain store from this
// node, which must be a member of g (503 no_leader elsewhere). A failure
// after the first byte cuts the stream short: the receiver verifies the
// copy (qledger snapshot save does) and refuses it.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	g, err := strconv.Atoi(r.PathValue("g"))
	if err != nil {
		s.fail(w, r, badRequest("group %q is not a number", r.PathValue("g")))
		return
	}
	sn, ok := s.members.(Snapshotter)
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "this node cannot write snapshots")
		return
	}
	if sn.Group() != g {
		s.fail(w, r, fmt.Errorf("%w: this node is in group %d, not %d; ask a member of group %d (GET /v1/cluster names them)", cluster.ErrNotLeader, sn.Group(), g, g))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := sn.WriteSnapshot(w); err != nil {
		s.logger.Error("snapshot cut short", "group", g, "error", err)
		panic(http.ErrAbortHandler) // the client must see a broken stream, not a short file
	}
}

// leave makes this node leave the cluster; the answer comes once it has.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Leaver == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "this node cannot leave on request; stop its process with SIGTERM")
		return
	}
	if lastVoter(s.members.Status(r.Context())) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "this node is its group's only voter: the group would have no one left; add a voter first, or stop the node")
		return
	}
	if err := s.cfg.Leaver.Leave(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.LeaveResult{Left: true})
}

// lastVoter reports whether the node that answered st is the only voter
// of its group's raft configuration, which raft cannot remove.
func lastVoter(st cluster.ClusterStatus) bool {
	if st.Node.Group < 0 || st.Node.Group >= len(st.Groups) {
		return false
	}
	g := st.Groups[st.Node.Group]
	if g.Voters != 1 {
		return false
	}
	for _, m := range g.Members {
		if m.ID == st.Node.ID {
			return m.Suffrage == "voter"
		}
	}
	return false
}
