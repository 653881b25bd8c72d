package cluster

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Health is what a server reports about its raft log.
type Health struct {
	ID        string `json:"id"`
	Term      uint64 `json:"term"`
	LastIndex uint64 `json:"last_index"`
	Applied   uint64 `json:"applied"`
}

// serverHealth is the reconciler's judgement of one server.
type serverHealth struct {
	Healthy       bool
	Reason        string
	HealthySince  time.Time
	LastIndex     uint64
	GossipState   string
	Role          Role
	Voter         bool
	Stable        bool // healthy for at least StabilizationTime
	FailedSince   time.Time
	TrailingIndex uint64
}

// reconciler keeps a group's raft configuration in line with gossip. It
// acts only on the group leader. It is the only path to a vote: explicit
// joins add non-voters too. Rules, per pass:
//
//   - an alive node of the group that is not in the configuration is added
//     as a non-voter; a configuration entry whose ID is alive at another
//     address, or whose address now belongs to another ID, is removed first;
//   - a voter-role non-voter healthy for StabilizationTime is promoted while
//     the group has fewer than TargetVoters voters, or to replace a failed
//     voter;
//   - a node that left is removed at once; a failed one after
//     DeadServerGrace, a failed voter only after a standby has replaced it
//     if there was one;
//   - non-voters are removed freely; of voters, stale or departed, at most
//     one changes per pass, and one is removed only when the healthy voters
//     left are a quorum of the configuration without it.
type reconciler struct {
	n *Node

	mu     sync.Mutex
	health map[string]*serverHealth
	// unknownSince tracks configuration entries gossip has never shown.
	unknownSince map[string]time.Time
}

func newReconciler(n *Node) *reconciler {
	return &reconciler{n: n, health: map[string]*serverHealth{}, unknownSince: map[string]time.Time{}}
}

func (r *reconciler) run(stop <-chan struct{}) {
	t := time.NewTicker(r.n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !r.n.IsLeader() {
			r.mu.Lock()
			r.health = map[string]*serverHealth{}
			r.unknownSince = map[string]time.Time{}
			r.mu.Unlock()
			continue
		}
		r.pass()
	}
}

// snapshot returns the latest health judgements (for status).
func (r *reconciler) snapshot() map[string]serverHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]serverHealth, len(r.health))
	for id, h := range r.health {
		out[id] = *h
	}
	return out
}

func quorum(voters int) int { return voters/2 + 1 }

// probeTimeout bounds one health probe: long enough for a loaded machine.
func probeTimeout(c Config) time.Duration { return max(c.ReconcileInterval, time.Second) }

func (r *reconciler) pass() {
	n := r.n
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	servers := cf.Configuration().Servers
	view := n.gossip.view()
	now := time.Now()
	self := n.info.ID
	stats := n.raft.Stats()
	term, _ := strconv.ParseUint(stats["term"], 10, 64)
	lastIndex, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)

	inConfig := map[string]raft.Server{}
	byAddr := map[string]string{}
	for _, s := range servers {
		inConfig[string(s.ID)] = s
		byAddr[string(s.Address)] = string(s.ID)
	}

	// Health of every other server, in parallel.
	type probe struct {
		id string
		h  Health
		ok bool
	}
	probes := make(chan probe, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		if string(s.ID) == self {
			continue
		}
		wg.Add(1)
		go func(s raft.Server) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout(n.cfg))
			defer cancel()
			var h Health
			err := n.client.callAs(ctx, string(s.Address), string(s.ID), mHealth, struct{}{}, &h)
			probes <- probe{string(s.ID), h, err == nil && h.ID == string(s.ID)}
		}(s)
	}
	wg.Wait()
	close(probes)
	answered := map[string]Health{}
	for p := range probes {
		if p.ok {
			answered[p.id] = p.h
		}
	}

	r.mu.Lock()
	for id := range r.health {
		if _, ok := inConfig[id]; !ok {
			delete(r.health, id)
		}
	}
	voters, healthyVoters := 0, 0
	for _, s := range servers {
		id := string(s.ID)
		h := r.health[id]
		if h == nil {
			h = &serverHealth{}
			r.health[id] = h
		}
		m, known := view[id]
		h.Voter = s.Suffrage == raft.Voter
		h.GossipState = "unknown"
		h.Role = RoleVoter
		if known {
			h.GossipState, h.Role = m.state, m.meta.Role
		}
		ok, reason := true, ""
		switch {
		case id == self:
			h.LastIndex = lastIndex
		case !known || m.state != stateAlive && m.state != stateSuspect:
			ok, reason = false, "not alive in gossip"
		case answered[id].ID == "":
			ok, reason = false, "does not answer"
		case answered[id].Term != term:
			ok, reason = false, "on another term"
		case lastIndex > answered[id].LastIndex+n.cfg.MaxTrailingLogs:
			ok, reason = false, "trails the leader"
		}
		if id != self {
			h.LastIndex = answered[id].LastIndex
		}
		if ok && !h.Healthy {
			h.HealthySince = now
		}
		h.Healthy, h.Reason = ok, reason
		h.Stable = ok && now.Sub(h.HealthySince) >= n.cfg.StabilizationTime
		if !ok && (!known || m.state == stateFailed || m.state == stateLeft) {
			if h.FailedSince.IsZero() {
				h.FailedSince = now
				if known {
					h.FailedSince = m.since
				}
			}
		} else {
			h.FailedSince = time.Time{}
		}
		if h.Voter {
			voters++
			if ok {
				healthyVoters++
			}
		}
	}
	health := make(map[string]serverHealth, len(r.health))
	for id, h := range r.health {
		health[id] = *h
	}
	r.mu.Unlock()

	timeout := n.cfg.ApplyTimeout
	remove := func(id, why string) bool {
		if err := n.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error(); err != nil {
			n.logger.Warn("reconcile: remove failed", "server", id[:12], "reason", why, "error", err)
			return false
		}
		n.logger.Info("reconcile: removed server", "server", id[:12], "reason", why)
		return true
	}
	// A voter is removed only if no other voter changed in this pass and
	// the healthy voters left are a quorum of the smaller configuration:
	// never leave a configuration whose healthy voters are not a quorum
	// of it.
	voterChanged := false
	removeVoter := func(id, why string) {
		if voterChanged {
			return
		}
		remaining := healthyVoters
		if health[id].Healthy {
			remaining--
		}
		if remaining < quorum(voters-1) {
			n.logger.Debug("reconcile: voter kept for quorum", "server", id[:12], "reason", why, "voters", voters, "healthy", healthyVoters)
			return
		}
		if remove(id, why) {
			voterChanged = true
			voters, healthyVoters = voters-1, remaining
		}
	}
	removeAny := func(s raft.Server, why string) {
		if s.Suffrage == raft.Voter {
			removeVoter(string(s.ID), why)
			return
		}
		remove(string(s.ID), why)
	}

	// Stale entries: the ID alive elsewhere, or the address taken by
	// another live node of the group (a wiped node that came back).
	for _, s := range servers {
		id := string(s.ID)
		if id == self {
			continue
		}
		if m, ok := view[id]; ok && m.state == stateAlive && m.meta.Addr != string(s.Address) {
			removeAny(s, "address changed to "+m.meta.Addr)
			continue
		}
		for mid, m := range view {
			if mid != id && m.meta.Group == n.group && m.state == stateAlive && m.meta.Addr == string(s.Address) {
				removeAny(s, "address now belongs to "+mid[:12])
				break
			}
		}
	}

	// Departures.
	for _, s := range servers {
		id := string(s.ID)
		h := health[id]
		if id == self || h.Healthy {
			continue
		}
		left := h.GossipState == stateLeft
		expired := !h.FailedSince.IsZero() && now.Sub(h.FailedSince) >= n.cfg.DeadServerGrace
		if !left && !expired {
			continue
		}
		// A failed voter waits for a stable standby to be promoted first.
		if s.Suffrage == raft.Voter && !left && voters <= n.cfg.TargetVoters && r.standby(health) != "" {
			continue
		}
		removeAny(s, h.GossipState)
	}

	// Arrivals: alive members of the group not in the configuration.
	ids := make([]string, 0, len(view))
	for id := range view {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := view[id]
		if m.meta.Group != n.group || m.state != stateAlive || id == self {
			continue
		}
		if _, ok := inConfig[id]; ok {
			continue
		}
		if other, taken := byAddr[m.meta.Addr]; taken && other != id {
			continue // removed above; added on the next pass
		}
		// Only a node that answers is added: gossip may not have noticed
		// yet that a process died.
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout(n.cfg))
		var h Health
		err := n.client.callAs(ctx, m.meta.Addr, id, mHealth, struct{}{}, &h)
		cancel()
		if err != nil || h.ID != id {
			continue
		}
		if err := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(m.meta.Addr), 0, timeout).Error(); err != nil {
			n.logger.Warn("reconcile: add non-voter failed", "server", id[:12], "error", err)
			continue
		}
		n.logger.Info("reconcile: added non-voter", "server", id[:12], "role", m.meta.Role, "addr", m.meta.Addr)
	}

	// Promotion: up to the target, or to replace a failed voter.
	if voterChanged {
		return
	}
	failedVoter := false
	for id, h := range health {
		if h.Voter && !h.FailedSince.IsZero() && id != self {
			failedVoter = true
		}
	}
	if voters < n.cfg.TargetVoters || failedVoter && voters <= n.cfg.TargetVoters {
		if id := r.standby(health); id != "" {
			addr := inConfig[id].Address
			if err := n.raft.AddVoter(raft.ServerID(id), addr, 0, timeout).Error(); err != nil {
				n.logger.Warn("reconcile: promote failed", "server", id[:12], "error", err)
				return
			}
			n.logger.Info("reconcile: promoted to voter", "server", id[:12])
		}
	}
}

// standby picks the longest-stable healthy voter-role non-voter.
func (r *reconciler) standby(health map[string]serverHealth) string {
	best, since := "", time.Time{}
	for id, h := range health {
		if h.Voter || !h.Stable || h.Role != RoleVoter || h.GossipState != stateAlive {
			continue
		}
		if best == "" || h.HealthySince.Before(since) || h.HealthySince.Equal(since) && id < best {
			best, since = id, h.HealthySince
		}
	}
	return best
}
