package cluster

import (
	"context"
	"sort"
	"strconv"
	"sync"

	"github.com/hashicorp/raft"
)

// Member is one raft server of a group.
type Member struct {
	NodeInfo
	// Suffrage is "voter" or "nonvoter".
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
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
}

// ClusterStatus is every group's status, as this node could learn it.
type ClusterStatus struct {
	Node   NodeInfo      `json:"node"`
	Groups []GroupStatus `json:"groups"`
}

func (n *Node) localStatus() GroupStatus {
	st := GroupStatus{Group: n.group, Reporter: n.info.ID, State: n.raft.State().String()}
	stats := n.raft.Stats()
	st.Term, _ = strconv.ParseUint(stats["term"], 10, 64)
	st.Commit, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.Applied, _ = strconv.ParseUint(stats["applied_index"], 10, 64)
	st.LastLog, _ = strconv.ParseUint(stats["last_log_index"], 10, 64)
	if h, ok, err := n.store.Head(); err == nil && ok {
		st.Height, st.LogSize = h.Height, h.LogSize
	}
	_, leaderID := n.raft.LeaderWithID()
	st.Leader = string(leaderID)
	st.HasLeader = leaderID != ""
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		st.Error = err.Error()
		return st
	}
	for _, s := range cf.Configuration().Servers {
		info, ok := n.dir.get(string(s.ID))
		if !ok {
			info = NodeInfo{ID: string(s.ID), Group: n.group}
		}
		info.Addr = string(s.Address)
		suffrage := "voter"
		if s.Suffrage != raft.Voter {
			suffrage = "nonvoter"
		}
		st.Members = append(st.Members, Member{NodeInfo: info, Suffrage: suffrage, Leader: s.ID == leaderID})
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	return st
}

// Status returns every group's status: the local group from this node,
// every other group from one of its nodes.
func (n *Node) Status(ctx context.Context) ClusterStatus {
	out := ClusterStatus{Node: n.info, Groups: make([]GroupStatus, n.cfg.Groups)}
	var wg sync.WaitGroup
	for g := 0; g < n.cfg.Groups; g++ {
		if g == n.group {
			out.Groups[g] = n.localStatus()
			continue
		}
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			out.Groups[g] = n.remoteStatus(ctx, g)
		}(g)
	}
	wg.Wait()
	return out
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

// Ready reports whether every group has a leader.
func (n *Node) Ready(ctx context.Context) (bool, ClusterStatus) {
	s := n.Status(ctx)
	for _, g := range s.Groups {
		if !g.HasLeader {
			return false, s
		}
	}
	return true, s
}
