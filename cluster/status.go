package cluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one node of a group: a raft server, or a node gossip shows
// that is not (yet) in the configuration (Suffrage "none").
type Member struct {
	NodeInfo
	// Suffrage is "voter", "nonvoter" or "none".
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	// Role is the node's advertised role: "voter" or "executor".
	Role Role `json:"role,omitempty"`
	// Gossip is alive, suspect, failed, left or unknown.
	Gossip string `json:"gossip"`
	// Healthy is the leader's judgement (alive, answering, on its term,
	// not trailing); Reason says why not, with since when or by how much
	// ("does not answer (no answer since 12:00:01.250Z)", "trails the
	// leader (by 2048 log entries, more than 1024)").
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
	// Stable is set once the member has been healthy for the
	// stabilization time.
	Stable bool `json:"stable,omitempty"`
	// Version is the build version the member advertises in gossip.
	Version string `json:"version,omitempty"`
	// Protocol is the newest internal protocol version the member speaks
	// (see ProtocolVersion), as it advertises in gossip.
	Protocol int `json:"protocol,omitempty"`
	// RaftLag is how many log entries the member's log trails the
	// leader's by, as the leader last polled it; only a leader reports
	// it.
	RaftLag *uint64 `json:"raft_lag,omitempty"`
	// ChainAlarm, when set, says the member found its chain store damaged
	// (as it gossips it: the first bad height and what is wrong).
	ChainAlarm string `json:"chain_alarm,omitempty"`
}

// GroupStatus is one group as one of its nodes sees it.
type GroupStatus struct {
	Group int `json:"group"`
	// Reporter is the node that answered.
	Reporter  string   `json:"reporter"`
	State     string   `json:"state"` // the reporter's raft state
	Leader    string   `json:"leader,omitempty"`
	Term      uint64   `json:"term"`
	Commit    uint64   `json:"commit_index"`
	Applied   uint64   `json:"applied_index"`
	LastLog   uint64   `json:"last_log_index"`
	Height    uint64   `json:"height"`
	LogSize   uint64   `json:"log_size"`
	Members   []Member `json:"members"`
	Error     string   `json:"error,omitempty"`
	HasLeader bool     `json:"has_leader"`
	// Voters and NonVoters count the configuration; HealthyVoters those
	// the leader judges healthy. FailureTolerance is how many more voters
	// may fail before the group loses quorum (negative: lost).
	Voters           int `json:"voters"`
	NonVoters        int `json:"nonvoters"`
	HealthyVoters    int `json:"healthy_voters"`
	FailureTolerance int `json:"failure_tolerance"`
	// QueueDepth is how many transactions wait for a block on the leader.
	QueueDepth int `json:"queue_depth"`
	// LastSnapshot is the index of the reporter's latest raft snapshot;
	// its log up to that index, less the trailing logs, is compacted.
	LastSnapshot uint64 `json:"last_snapshot_index"`
	// SnapshotRestores counts the snapshots the reporter installed since
	// it started (a replica whose next entries were compacted away on
	// the leader catches up from one).
	SnapshotRestores uint64 `json:"snapshot_restores"`
	// ChainAlarms lists the replicas of the group whose chain store is
	// found damaged: the reporter's own alarm in full, the others' as
	// gossip carries them.
	ChainAlarms []ChainAlarm `json:"chain_alarms,omitempty"`
	// Autoscale is the leader's last executor autoscaling decision (nil:
	// no autoscaler runs on the reporter).
	Autoscale *ScaleDecision `json:"autoscale,omitempty"`
}

// ClusterStatus is every group's status, as this node could learn it.
type ClusterStatus struct {
	Node   NodeInfo      `json:"node"`
	Groups []GroupStatus `json:"groups"`
	// ChainAlarm is the answering node's own alarm, if raised.
	ChainAlarm *ChainAlarm `json:"chain_alarm,omitempty"`
}

func (n *Node) localStatus() GroupStatus {
	st := GroupStatus{Group: n.group, Reporter: n.info.ID, State: n.raft.State().String()}
	st.Term, st.Commit = n.raft.CurrentTerm(), n.raft.CommitIndex()
	st.Applied, st.LastLog = n.raft.AppliedIndex(), n.raft.LastIndex()
	// raft has no accessor for the last snapshot's index but Stats.
	st.LastSnapshot, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	st.SnapshotRestores = n.fsm.Restores()
	if h, ok, err := n.store.Head(); err == nil && ok {
		st.Height, st.LogSize = h.Height, h.LogSize
	}
	if err := n.fsm.Err(); err != nil {
		// raft goes on (its applied index too), but this replica's
		// chain no longer moves: say so rather than look current.
		st.Error = fmt.Sprintf("state machine stopped; it resumes by itself once the store takes writes again (free space), or restart the node once the cause is fixed: %v", err)
	}
	_, leaderID := n.raft.LeaderWithID()
	st.Leader = string(leaderID)
	st.HasLeader = leaderID != ""
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		st.Error = err.Error()
		return st
	}
	view := map[string]member{}
	if n.gossip != nil {
		view = n.gossip.view()
	}
	var health map[string]serverHealth
	if n.rec != nil && n.IsLeader() {
		health = n.rec.snapshot()
	}
	seen := map[string]bool{}
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		seen[id] = true
		info, ok := n.dir.get(id)
		if !ok {
			info = NodeInfo{ID: id, Group: n.group}
		}
		info.Addr = string(s.Address)
		m := Member{NodeInfo: info, Suffrage: "voter", Leader: s.ID == leaderID, Gossip: "unknown"}
		if s.Suffrage != raft.Voter {
			m.Suffrage = "nonvoter"
			st.NonVoters++
		} else {
			st.Voters++
		}
		if g, ok := view[id]; ok {
			m.Role, m.Gossip, m.Version, m.Protocol = g.meta.Role, g.state, g.meta.Version, g.meta.protocol()
			if g.meta.Corrupt != "" {
				m.ChainAlarm = fmt.Sprintf("height %d: %s", g.meta.CorruptAt, g.meta.Corrupt)
			}
		}
		if h, ok := health[id]; ok {
			m.Healthy, m.Reason, m.Stable = h.Healthy, h.Reason, h.Stable
			m.RaftLag = lag(st.LastLog, h.LastIndex, s.ID == leaderID)
		} else if health == nil {
			// Only the leader judges health; others go by gossip.
			m.Healthy = m.Gossip == stateAlive
		}
		if s.Suffrage == raft.Voter && m.Healthy {
			st.HealthyVoters++
		}
		st.Members = append(st.Members, m)
	}
	for id, g := range view {
		if g.meta.Group == n.group && !seen[id] && (g.state == stateAlive || g.state == stateSuspect) {
			st.Members = append(st.Members, Member{NodeInfo: NodeInfo{ID: id, Group: n.group, Addr: g.meta.Addr, APIAddr: g.meta.API}, Suffrage: "none", Role: g.meta.Role, Gossip: g.state, Version: g.meta.Version, Protocol: g.meta.protocol()})
		}
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	st.ChainAlarms = n.groupAlarms(view)
	st.FailureTolerance = st.HealthyVoters - quorum(st.Voters)
	if n.batch != nil {
		st.QueueDepth = len(n.batch.in)
		st.Autoscale = n.AutoscaleStatus()
	}
	return st
}

// lag is how far a member's last log index trails the leader's (0 for
// the leader itself, or a member ahead of a stale reading).
func lag(leaderLast, memberLast uint64, isLeader bool) *uint64 {
	var d uint64
	if !isLeader && memberLast < leaderLast {
		d = leaderLast - memberLast
	}
	return &d
}

// Status returns every group's status: the local group from this node,
// every other group from one of its nodes.
func (n *Node) Status(ctx context.Context) ClusterStatus {
	out := ClusterStatus{Node: n.info, Groups: make([]GroupStatus, n.cfg.Groups), ChainAlarm: n.chainAlarm()}
	var wg sync.WaitGroup
	for g := 0; g < n.cfg.Groups; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if g == n.group {
				out.Groups[g] = n.localStatus()
			} else {
				out.Groups[g] = n.remoteStatus(ctx, g)
			}
			n.leaderAutoscale(ctx, &out.Groups[g])
		}(g)
	}
	wg.Wait()
	return out
}

// leaderAutoscale makes st.Autoscale the group leader's decision when
// another member reported st: the autoscaler runs on the leader, and a
// former leader's last decision is stale. Without an answer from the
// leader (within a second) it is left out.
func (n *Node) leaderAutoscale(ctx context.Context, st *GroupStatus) {
	if !st.HasLeader || st.Reporter == st.Leader {
		return
	}
	st.Autoscale = nil
	for _, m := range st.Members {
		if m.ID != st.Leader {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var ls GroupStatus
		if err := n.client.callAs(ctx, m.Addr, m.ID, mStatus, struct{}{}, &ls); err == nil && ls.Reporter == st.Leader {
			st.Autoscale = ls.Autoscale
		}
		return
	}
}

func (n *Node) remoteStatus(ctx context.Context, g int) GroupStatus {
	st := GroupStatus{Group: g, Error: errNoStatus.Error()}
	for _, m := range n.dir.inGroup(g) {
		var s GroupStatus
		if err := n.client.call(ctx, m.Addr, mStatus, struct{}{}, &s); err == nil {
			if s.HasLeader || !st.HasLeader {
				st = s
			}
			if s.HasLeader {
				return s
			}
		}
	}
	return st
}

// Ready reports whether every group has a leader and this node's chain
// store is not found damaged (ClusterStatus.ChainAlarm says why not).
func (n *Node) Ready(ctx context.Context) (bool, ClusterStatus) {
	s := n.Status(ctx)
	if s.ChainAlarm != nil {
		return false, s
	}
	for _, g := range s.Groups {
		if !g.HasLeader {
			return false, s
		}
	}
	return true, s
}

// groupAlarms is this node's alarm and the alarms gossip shows for the
// other members of its group.
func (n *Node) groupAlarms(view map[string]member) []ChainAlarm {
	var out []ChainAlarm
	if a := n.chainAlarm(); a != nil {
		out = append(out, *a)
	}
	for id, m := range view {
		if id != n.info.ID && m.meta.Group == n.group && m.meta.Corrupt != "" {
			out = append(out, ChainAlarm{Node: id, Group: n.group, Height: m.meta.CorruptAt, What: m.meta.Corrupt, Source: "gossip"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
