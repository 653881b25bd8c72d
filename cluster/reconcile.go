package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Health is what a server reports about its raft log.
type Health struct {
	ID        string `json:"id"`
	Term      uint64 `json:"term"`
	LastIndex uint64 `json:"last_index"`
	Applied   uint64 `json:"applied"`
	// CPU is the share of its machine's CPUs (0..1) the node's process
	// used over its last sampling window (cpuSampler); the autoscaler
	// reads its executors'. Nodes of older versions leave it 0.
	CPU float64 `json:"cpu,omitempty"`
	// ChainAlarm, when set, is the server's raised chain alarm (height
	// and what): the reconciler counts the server unhealthy and promotes
	// no such non-voter.
	ChainAlarm string `json:"chain_alarm,omitempty"`
}

// serverHealth is the reconciler's judgement of one server.
type serverHealth struct {
	Healthy      bool
	Reason       string
	HealthySince time.Time
	LastIndex    uint64
	GossipState  string
	Role         Role
	Voter        bool
	Stable       bool // healthy for at least StabilizationTime
	// Damaged: the server reports a chain alarm (in its probe answer or
	// in gossip); it is then unhealthy.
	Damaged     bool
	FailedSince time.Time
	// LastAnswer is when the server last answered a probe on the
	// leader's term (zero: not while this leader judged it).
	LastAnswer time.Time
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
//   - a server that reports a chain alarm counts as unhealthy (so a
//     damaged non-voter is not promoted until its alarm has cleared and it
//     stayed healthy for StabilizationTime); a damaged voter keeps its
//     vote, since its raft log is intact, and cannot lead (candidacy.go);
//   - non-voters are removed freely; of voters, stale or departed, at most
//     one changes per pass, and one is removed only when the healthy voters
//     left are a quorum of the configuration without it.
//
// A pass has three steps: collect (read raft and gossip, probe health),
// decide (the pure function in reconcile_decide.go that applies the rules
// above to what was collected) and act (make the planned changes, only on
// the configuration they were planned on). A change raft refuses, or a
// configuration that changed meanwhile, is left to a later pass, which
// decides again from what it then sees.
type reconciler struct {
	n *Node

	// passMu serializes passes (the loop's and any a test runs).
	passMu sync.Mutex

	mu sync.Mutex
	// health is the last pass's judgement of each configured server.
	health map[string]serverHealth

	// resyncing is set while a gossip resync runs (resync).
	resyncing atomic.Bool
}

func newReconciler(n *Node) *reconciler {
	return &reconciler{n: n, health: map[string]serverHealth{}}
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
			r.health = map[string]serverHealth{}
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
	return maps.Clone(r.health)
}

func quorum(voters int) int { return voters/2 + 1 }

// probeTimeout bounds one health probe: long enough for a loaded machine.
func probeTimeout(c Config) time.Duration { return max(c.ReconcileInterval, time.Second) }

// pass runs one reconciliation: collect what the leader sees, decide
// what to change, act on it. Passes are serialized.
func (r *reconciler) pass() {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	o, ok := r.collect()
	if !ok {
		return
	}
	r.resync(o)
	r.mu.Lock()
	p := decide(r.health, o)
	r.health = p.Health
	r.mu.Unlock()
	r.act(p, o.Servers)
}

// collect observes the group from the leader: its raft configuration,
// term and last index, gossip's view, and a health probe of every
// probeTargets node, run in parallel. It reports false if raft cannot
// give its configuration.
func (r *reconciler) collect() (observation, bool) {
	n := r.n
	servers, ok := r.configuration()
	if !ok {
		return observation{}, false
	}
	o := observation{
		Servers:   servers,
		Self:      n.info.ID,
		Group:     n.group,
		Now:       time.Now(),
		Term:      n.raft.CurrentTerm(),
		LastIndex: n.raft.LastIndex(),
		View:      n.gossip.view(),
		Rules:     rulesOf(n.cfg),
	}
	o.Answers = r.probe(probeTargets(o))
	return o, true
}

// resync exchanges gossip state at once with every member gossip counts
// failed that answered the probe: a healed node. Without it, gossip learns
// of the heal only at its next periodic sync (30 s on a LAN) or rejoin,
// and the member counts unhealthy until then; the exchange shows the node
// that it was declared dead, it refutes, and its alive state spreads
// within a gossip interval.
func (r *reconciler) resync(o observation) {
	var addrs []string
	for id, m := range o.View {
		if _, answered := o.Answers[id]; answered && m.state == stateFailed && m.gossip != "" {
			addrs = append(addrs, m.gossip)
		}
	}
	// One at a time, beside the passes: a member whose gossip port is
	// unreachable holds an exchange for memberlist's TCP timeout.
	if len(addrs) == 0 || !r.resyncing.CompareAndSwap(false, true) {
		return
	}
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		defer r.resyncing.Store(false)
		if _, err := r.n.gossip.ml.Join(addrs); err != nil {
			r.n.logger.Debug("reconcile: gossip resync with answering members failed", "addrs", addrs, "error", err)
		}
	}()
}

// probe asks every target (ID to address) for its health, in parallel,
// and returns the answers of those that answered under their own ID.
func (r *reconciler) probe(targets map[string]string) map[string]Health {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		answers = make(map[string]Health, len(targets))
	)
	for id, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout(r.n.cfg))
			defer cancel()
			var h Health
			if err := r.n.client.callAs(ctx, addr, id, mHealth, struct{}{}, &h); err != nil || h.ID != id {
				return
			}
			mu.Lock()
			answers[id] = h
			mu.Unlock()
		}()
	}
	wg.Wait()
	return answers
}

// act makes the planned changes in order, on the configuration they were
// planned on (observed): if it changed while the pass probed (an
// explicit join or removal ran meanwhile), the plan is dropped; each
// change after the first must apply to the configuration the one before
// produced (raft's prevIndex). A change raft refuses ends the plan. The
// next pass decides again from what it then sees.
func (r *reconciler) act(p plan, observed []configServer) {
	n := r.n
	for _, h := range p.Held {
		n.logger.Debug("reconcile: voter kept for quorum", "server", shortID(h.ID), "reason", h.Reason, "voters", h.Voters, "healthy", h.Health)
	}
	if len(p.Actions) == 0 {
		return
	}
	if cur, ok := r.configuration(); !ok || !slices.Equal(cur, observed) {
		n.logger.Debug("reconcile: configuration changed during the pass; plan dropped", "changes", len(p.Actions))
		return
	}
	var prev uint64 // 0: the first change applies to the current configuration
	for _, a := range p.Actions {
		f := r.change(a, prev)
		if err := f.Error(); err != nil {
			n.logger.Warn("reconcile: change failed", "change", a.Kind, "server", shortID(a.ID), "reason", a.Reason, "error", err)
			return
		}
		prev = f.Index()
		n.logger.Info("reconcile: configuration changed", "change", a.Kind, "server", shortID(a.ID), "reason", a.Reason, "role", a.Role, "addr", a.Addr)
	}
}

// change submits one planned change to raft; prevIndex as raft takes it.
func (r *reconciler) change(a action, prevIndex uint64) raft.IndexFuture {
	id, addr, timeout := raft.ServerID(a.ID), raft.ServerAddress(a.Addr), r.n.cfg.ApplyTimeout
	switch a.Kind {
	case actAddNonvoter:
		return r.n.raft.AddNonvoter(id, addr, prevIndex, timeout)
	case actPromote:
		return r.n.raft.AddVoter(id, addr, prevIndex, timeout)
	}
	return r.n.raft.RemoveServer(id, prevIndex, timeout)
}

// configuration is the group's raft configuration as plain entries, in
// raft's order; false if raft cannot give it.
func (r *reconciler) configuration() ([]configServer, bool) {
	cf := r.n.raft.GetConfiguration()
	if cf.Error() != nil {
		return nil, false
	}
	var out []configServer
	for _, s := range cf.Configuration().Servers {
		out = append(out, configServer{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, true
}
