package cluster

import (
	"fmt"
	"sort"
	"time"
)

// This file is the reconciler's judgement: pure functions from what one
// pass observed (an observation) to the health of each server and the
// configuration changes to make (a plan). They touch neither raft nor
// gossip nor the clock, so every rule can be tested with plain values.

// observation is everything one reconcile pass decides from, as plain
// values collected on the group leader.
type observation struct {
	// Self is the leader's node ID; Group its group.
	Self  string
	Group int
	// Now is when the pass began.
	Now time.Time
	// Term and LastIndex are the leader's raft term and last log index.
	Term, LastIndex uint64
	// Servers is the group's raft configuration, in its order.
	Servers []configServer
	// View is gossip's view of the cluster, by node ID.
	View map[string]member
	// Answers holds the health reports of the probed nodes (see
	// probeTargets) that answered under their own ID; a node that did not
	// answer, or answered as someone else, is absent.
	Answers map[string]Health
	// Rules are the limits the reconciler keeps.
	Rules reconcileRules
}

// configServer is one entry of a raft configuration.
type configServer struct {
	ID, Addr string
	Voter    bool // a voter (otherwise a non-voter or staging)
}

// reconcileRules are the reconciler's limits, taken from Config.
type reconcileRules struct {
	TargetVoters      int
	StabilizationTime time.Duration
	DeadServerGrace   time.Duration
	MaxTrailingLogs   uint64
}

func rulesOf(c Config) reconcileRules {
	return reconcileRules{
		TargetVoters:      c.TargetVoters,
		StabilizationTime: c.StabilizationTime,
		DeadServerGrace:   c.DeadServerGrace,
		MaxTrailingLogs:   c.MaxTrailingLogs,
	}
}

// actionKind is what an action does to the raft configuration.
type actionKind uint8

const (
	actRemove      actionKind = iota + 1 // remove a server
	actAddNonvoter                       // add a node as a non-voter
	actPromote                           // make a non-voter a voter
)

func (k actionKind) String() string {
	switch k {
	case actRemove:
		return "remove"
	case actAddNonvoter:
		return "add-nonvoter"
	case actPromote:
		return "promote"
	}
	return "unknown"
}

// action is one planned configuration change.
type action struct {
	Kind   actionKind
	ID     string
	Addr   string // the server's raft address (add, promote)
	Role   Role   // the role gossip shows (add)
	Voter  bool   // the removed server is a voter (remove)
	Reason string // why (remove)
}

// heldVoter is a voter removal withheld to keep a healthy quorum.
type heldVoter struct {
	ID, Reason     string
	Voters, Health int // voters and healthy voters when it was held
}

// plan is decide's result: the new health judgements and the changes to
// make, in order. It holds at most one voter change (a voter removed or
// a non-voter promoted).
type plan struct {
	Health  map[string]serverHealth
	Actions []action
	Held    []heldVoter
}

// probeTargets is who a pass probes, by ID, with the address to reach
// each: every configured server but the leader, and every alive member of
// the group that gossip shows outside the configuration at an address no
// other configured server holds (those are the candidates to add).
func probeTargets(o observation) map[string]string {
	targets := map[string]string{}
	byAddr := map[string]string{}
	for _, s := range o.Servers {
		byAddr[s.Addr] = s.ID
		if s.ID != o.Self {
			targets[s.ID] = s.Addr
		}
	}
	for id, m := range o.View {
		if !isNewcomer(o, id, m) {
			continue
		}
		if other, taken := byAddr[m.meta.Addr]; taken && other != id {
			continue
		}
		targets[id] = m.meta.Addr
	}
	return targets
}

// isNewcomer reports whether gossip member id is an alive member of the
// leader's group that is not in the configuration.
func isNewcomer(o observation, id string, m member) bool {
	if m.meta.Group != o.Group || m.state != stateAlive || id == o.Self {
		return false
	}
	for _, s := range o.Servers {
		if s.ID == id {
			return false
		}
	}
	return true
}

// decide judges the health of every configured server, carrying over
// what prev (the previous pass's judgements) remembers, and plans the
// configuration changes the reconciler's rules call for.
func decide(prev map[string]serverHealth, o observation) plan {
	p := planner{o: o, health: judge(prev, o), removed: map[string]bool{}}
	for _, h := range p.health {
		if h.Voter {
			p.voters++
			if h.Healthy {
				p.healthyVoters++
			}
		}
	}
	p.staleEntries()
	p.departures()
	p.arrivals()
	p.promotion()
	return plan{Health: p.health, Actions: p.actions, Held: p.held}
}

// judge returns the health of every configured server; entries for
// servers no longer configured are dropped.
func judge(prev map[string]serverHealth, o observation) map[string]serverHealth {
	out := make(map[string]serverHealth, len(o.Servers))
	for _, s := range o.Servers {
		out[s.ID] = judgeOne(prev[s.ID], s, o)
	}
	return out
}

// judgeOne updates h, the previous judgement of s (zero if none). A
// server other than the leader is healthy when gossip shows it alive or
// suspect, it answers the probe, it is on the leader's term and trails
// the leader by at most MaxTrailingLogs.
func judgeOne(h serverHealth, s configServer, o observation) serverHealth {
	m, known := o.View[s.ID]
	h.Voter = s.Voter
	h.GossipState, h.Role = "unknown", RoleVoter
	if known {
		h.GossipState, h.Role = m.state, m.meta.Role
	}
	a, answered := o.Answers[s.ID]
	ok, reason := true, ""
	if answered && a.Term == o.Term {
		h.LastAnswer = o.Now
	}
	alarm := a.ChainAlarm
	if alarm == "" && known && m.meta.Corrupt != "" {
		alarm = fmt.Sprintf("height %d: %s", m.meta.CorruptAt, m.meta.Corrupt)
	}
	h.Damaged = alarm != "" && s.ID != o.Self
	switch {
	case s.ID == o.Self:
	case !known:
		ok, reason = false, "not alive in gossip (unknown to it)"
	case m.state != stateAlive && m.state != stateSuspect:
		ok, reason = false, fmt.Sprintf("not alive in gossip (%s since %s)", m.state, stamp(m.since))
	case !answered:
		ok, reason = false, "does not answer ("+lastAnswer(h.LastAnswer)+")"
	case a.Term != o.Term:
		ok, reason = false, fmt.Sprintf("on another term (%d, the leader's is %d)", a.Term, o.Term)
	case h.Damaged:
		ok, reason = false, "chain store damaged ("+alarm+")"
	case o.LastIndex > a.LastIndex+o.Rules.MaxTrailingLogs:
		ok, reason = false, fmt.Sprintf("trails the leader (by %d log entries, more than %d)", o.LastIndex-a.LastIndex, o.Rules.MaxTrailingLogs)
	}
	h.LastIndex = a.LastIndex
	if s.ID == o.Self {
		h.LastIndex = o.LastIndex
	}
	if ok && !h.Healthy {
		h.HealthySince = o.Now
	}
	h.Healthy, h.Reason = ok, reason
	h.Stable = ok && o.Now.Sub(h.HealthySince) >= o.Rules.StabilizationTime
	switch {
	case ok || known && m.state != stateFailed && m.state != stateLeft:
		h.FailedSince = time.Time{}
	case !h.FailedSince.IsZero():
	case known:
		h.FailedSince = m.since
	default:
		h.FailedSince = o.Now
	}
	return h
}

// planner builds a plan, keeping count of the voters as planned changes
// would leave them.
type planner struct {
	o      observation
	health map[string]serverHealth

	voters, healthyVoters int
	voterChanged          bool
	removed               map[string]bool

	actions []action
	held    []heldVoter
}

// remove plans s's removal. Non-voters go freely. A voter goes only if no
// other voter changes in this pass and the healthy voters left are a
// quorum of the configuration without it; otherwise it is held.
func (p *planner) remove(s configServer, why string) {
	if p.removed[s.ID] {
		return
	}
	if s.Voter {
		if p.voterChanged {
			return
		}
		remaining := p.healthyVoters
		if p.health[s.ID].Healthy {
			remaining--
		}
		if remaining < quorum(p.voters-1) {
			p.held = append(p.held, heldVoter{ID: s.ID, Reason: why, Voters: p.voters, Health: p.healthyVoters})
			return
		}
		p.voterChanged = true
		p.voters, p.healthyVoters = p.voters-1, remaining
	}
	p.removed[s.ID] = true
	p.actions = append(p.actions, action{Kind: actRemove, ID: s.ID, Voter: s.Voter, Reason: why})
}

// staleEntries removes entries whose ID gossip shows alive at another
// address, or whose address an alive member of the group now holds (a
// wiped node that came back with a new ID).
func (p *planner) staleEntries() {
	ids := sortedIDs(p.o.View)
	for _, s := range p.o.Servers {
		if s.ID == p.o.Self {
			continue
		}
		if m, ok := p.o.View[s.ID]; ok && m.state == stateAlive && m.meta.Addr != s.Addr {
			p.remove(s, "address changed to "+m.meta.Addr)
			continue
		}
		for _, mid := range ids {
			m := p.o.View[mid]
			if mid != s.ID && m.meta.Group == p.o.Group && m.state == stateAlive && m.meta.Addr == s.Addr {
				p.remove(s, "address now belongs to "+shortID(mid))
				break
			}
		}
	}
}

// departures removes servers that left gossip at once, and failed ones
// after DeadServerGrace; a failed voter waits while a stable standby
// could be promoted in its place first.
func (p *planner) departures() {
	for _, s := range p.o.Servers {
		h := p.health[s.ID]
		if s.ID == p.o.Self || h.Healthy {
			continue
		}
		left := h.GossipState == stateLeft
		expired := !h.FailedSince.IsZero() && p.o.Now.Sub(h.FailedSince) >= p.o.Rules.DeadServerGrace
		if !left && !expired {
			continue
		}
		if s.Voter && !left && p.voters <= p.o.Rules.TargetVoters && standby(p.health) != "" {
			continue
		}
		p.remove(s, h.GossipState)
	}
}

// arrivals adds, as non-voters, the alive members of the group outside
// the configuration that answered their probe (gossip may not yet have
// noticed that a process died). One whose address a configured server
// still holds waits for that entry's removal.
func (p *planner) arrivals() {
	for _, id := range sortedIDs(p.o.View) {
		m := p.o.View[id]
		if !isNewcomer(p.o, id, m) {
			continue
		}
		taken := false
		for _, s := range p.o.Servers {
			taken = taken || s.Addr == m.meta.Addr
		}
		if _, answered := p.o.Answers[id]; taken || !answered {
			continue
		}
		p.actions = append(p.actions, action{Kind: actAddNonvoter, ID: id, Addr: m.meta.Addr, Role: m.meta.Role})
	}
}

// promotion promotes the longest-stable standby while the group has
// fewer than TargetVoters voters, or to replace a failed voter, unless a
// voter already changed in this pass.
func (p *planner) promotion() {
	if p.voterChanged {
		return
	}
	failedVoter := false
	for id, h := range p.health {
		if h.Voter && !h.FailedSince.IsZero() && id != p.o.Self {
			failedVoter = true
		}
	}
	target := p.o.Rules.TargetVoters
	if !(p.voters < target || failedVoter && p.voters <= target) {
		return
	}
	id := standby(p.health)
	if id == "" {
		return
	}
	for _, s := range p.o.Servers {
		if s.ID == id {
			p.voterChanged = true
			p.actions = append(p.actions, action{Kind: actPromote, ID: id, Addr: s.Addr})
			return
		}
	}
}

// standby picks the longest-stable healthy voter-role non-voter (ties by
// ID), or "" if there is none.
func standby(health map[string]serverHealth) string {
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

func sortedIDs(view map[string]member) []string {
	ids := make([]string, 0, len(view))
	for id := range view {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// shortID is the first 12 characters of a node ID, for logs.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// stamp is a time in a health reason: UTC, to the millisecond.
func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000Z") }

// lastAnswer says when a server last answered this leader's probes.
func lastAnswer(t time.Time) string {
	if t.IsZero() {
		return "no answer since this leader's term began"
	}
	return "no answer since " + stamp(t)
}
