package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"qledger/chain"
)

func txFor(g int, payload string) chain.Tx {
	return chain.Tx{Kind: chain.TxData, Group: uint32(g), Payload: []byte(payload)}
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func groupStatus(n *Node) GroupStatus { return n.localStatus() }

// voters counts voters and non-voters in the leader's configuration.
func config(t *testing.T, l *Local, g int) (voters, nonvoters int) {
	ld, ok := l.Leader(g)
	if !ok {
		return -1, -1
	}
	st := groupStatus(ld)
	return st.Voters, st.NonVoters
}

// configWithLeader is config once group g has a leader: on a loaded
// machine an election may be under way, so it waits up to a minute for
// one.
func configWithLeader(t *testing.T, l *Local, g int) (voters, nonvoters int) {
	t.Helper()
	waitUntil(t, "a leader", time.Minute, func() bool { voters, nonvoters = config(t, l, g); return voters >= 0 })
	return voters, nonvoters
}

// leaderServers returns group g's configuration as its leader holds it.
func leaderServers(l *Local, g int) ([]raft.Server, bool) {
	ld, ok := l.Leader(g)
	if !ok {
		return nil, false
	}
	cf := ld.raft.GetConfiguration()
	if cf.Error() != nil {
		return nil, false
	}
	return cf.Configuration().Servers, true
}

// suffrage returns id's suffrage in servers, and whether it is there.
func suffrage(servers []raft.Server, id string) (raft.ServerSuffrage, bool) {
	for _, s := range servers {
		if string(s.ID) == id {
			return s.Suffrage, true
		}
	}
	return 0, false
}

func voterCount(servers []raft.Server) int {
	c := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// checkHealthyQuorum fails t if the voters of servers that are not down
// are fewer than a quorum of its voters.
func checkHealthyQuorum(t *testing.T, servers []raft.Server, down map[string]bool) {
	t.Helper()
	voters, healthy := voterCount(servers), 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter && !down[string(s.ID)] {
			healthy++
		}
	}
	if healthy < quorum(voters) {
		t.Fatalf("configuration with %d healthy of %d voters: %v", healthy, voters, servers)
	}
}

// partition cuts gossip, for Config.GossipBlocked: nodes isolated
// together reach each other but none of the rest, in either direction.
// Raft traffic is not affected.
type partition struct {
	mu  sync.Mutex
	cut map[string]bool // gossip addresses on the far side
}

func (p *partition) blocked(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut[from] != p.cut[to]
}

func (p *partition) isolate(nodes ...*Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range nodes {
		p.cut[n.gossipAddr] = true
	}
}

func (p *partition) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = map[string]bool{}
}

// startPartitionable starts an embedded cluster from base (LoopbackTiming
// if nil) whose gossip the returned partition can cut.
func startPartitionable(t *testing.T, groups, replicas int, base *Config) (*Local, *partition) {
	t.Helper()
	if base == nil {
		b := DefaultConfig()
		b.LoopbackTiming()
		base = &b
	}
	p := &partition{cut: map[string]bool{}}
	cfg := *base
	cfg.GossipBlocked = p.blocked
	// A bound on the first elections, generous for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Groups: groups, Replicas: replicas, DataDir: t.TempDir(), Base: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, p
}

// wipeAndReplace stops node i and starts a node with a new ID and empty
// data at its raft address, as after a disk wipe. Nodes[i] stays the
// stopped node.
func wipeAndReplace(t *testing.T, l *Local, i int) *Node {
	t.Helper()
	old := l.Nodes[i]
	addr := old.info.Addr
	old.Close()
	cfg := l.configs[i]
	cfg.NodeID = ""
	cfg.DataDir = t.TempDir()
	cfg.InitialVoters = nil
	cfg.Join = l.seeds()
	cfg.GossipBind = "127.0.0.1:0"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = ln
	fresh, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	return fresh
}

// TestNewNodesAreAddedThenPromoted waits on conditions with a minute's
// deadline: on a loaded machine each step takes as long as the
// reconciler's passes take.
func TestNewNodesAreAddedThenPromoted(t *testing.T) {
	l := startLocal(t, 1, 1)
	ctx := context.Background()
	a, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a added as non-voter or voter", time.Minute, func() bool { v, nv := config(t, l, 0); return v+nv == 2 })
	b, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "3 voters and the executor as non-voter", time.Minute, func() bool { v, nv := config(t, l, 0); return v == 3 && nv == 1 })
	// A fourth voter-role node stays a standby: the target is 3.
	standby, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "standby added", time.Minute, func() bool { v, nv := config(t, l, 0); return v == 3 && nv == 2 })
	// Once the leader's reconciler has judged the standby stable, that
	// pass decides whether to promote it. A later pass of the same leader
	// has begun when the standby's health records a log index written
	// after the judgement was seen (passes run one after another): by then
	// the decision was made. A new leader starts its judgements afresh.
	var (
		judge   *Node  // the leader seen judging the standby stable
		written uint64 // the log index written after that
	)
	waitUntil(t, "a reconcile pass after the standby was judged stable", time.Minute, func() bool {
		ld, ok := l.Leader(0)
		if !ok {
			return false
		}
		h := ld.rec.snapshot()[standby.info.ID]
		if ld != judge {
			if !h.Stable {
				return false
			}
			submit(t, ld, 0, "", "after the standby is stable")
			judge, written = ld, groupStatus(ld).LastLog
			return false
		}
		return h.LastIndex >= written
	})
	if v, nv := configWithLeader(t, l, 0); v != 3 || nv != 2 {
		t.Fatalf("after stabilization: %d voters %d non-voters, want 3 and 2", v, nv)
	}
	// Every node, including the executor, replicates the chain.
	r := submit(t, exec, 0, "", "via executor")
	for _, n := range []*Node{a, b, exec, standby} {
		waitUntil(t, "replication to "+n.ID().Short(), time.Minute, func() bool {
			h, _, _ := n.Store().Head()
			return h.LogSize > r.Index
		})
	}
	// A voter fails: the standby is promoted, then the failed voter removed.
	victim := a
	if victim.IsLeader() {
		victim = b
	}
	// At every point observed, the standby is a voter before the failed
	// voter is gone, and the running voters are a quorum.
	victim.Close()
	down := map[string]bool{victim.info.ID: true}
	waitUntil(t, "standby promoted and failed voter removed", time.Minute, func() bool {
		servers, ok := leaderServers(l, 0)
		if !ok {
			return false
		}
		checkHealthyQuorum(t, servers, down)
		s, _ := suffrage(servers, standby.info.ID)
		_, victimIn := suffrage(servers, victim.info.ID)
		if !victimIn && s != raft.Voter {
			t.Fatalf("failed voter removed before the standby was promoted: %v", servers)
		}
		return !victimIn && s == raft.Voter && voterCount(servers) == 3
	})
	_ = ctx
}

func TestGracefulLeaveRemovesAtOnce(t *testing.T) {
	l := startLocal(t, 1, 3)
	exec, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "executor added", 10*time.Second, func() bool { _, nv := config(t, l, 0); return nv == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	exec.Close()
	if _, nv := configWithLeader(t, l, 0); nv != 0 {
		t.Fatalf("%d non-voters after a graceful leave", nv)
	}
	// The leader itself leaves: leadership moves first.
	ld := waitLeader(t, l)
	if err := ld.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	ld.Close()
	waitUntil(t, "a new leader with 2 voters", 10*time.Second, func() bool { v, _ := config(t, l, 0); return v == 2 })
}

func TestWrongGossipKeyNeverJoins(t *testing.T) {
	log := &logLines{}
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 1, Logger: log.logger()})
	// refusals counts the streams the cluster's node discarded for reason.
	refusals := func(reason string) int { return log.count("memberlist:", reason) }
	cfg := l.base
	cfg.GossipKey = []byte("0123456789abcdef0123456789abcdef")
	cfg.Groups = 1
	cfg.DataDir = t.TempDir()
	cfg.BindAddr, cfg.GossipBind = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = l.seeds()
	cfg.InitialVoters = nil
	cfg.Listener = nil
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Its join and at least one retry reached the cluster and were refused.
	waitUntil(t, "two refused joins with the wrong key", 30*time.Second, func() bool { return refusals("no installed keys could decrypt") >= 2 })
	if _, ok := l.Nodes[0].gossip.view()[n.info.ID]; ok {
		t.Fatal("a node with the wrong gossip key became a member")
	}
	if _, ok := n.gossip.view()[l.Nodes[0].info.ID]; ok {
		t.Fatal("the node with the wrong key sees the cluster")
	}
	// Same key, wrong label: also never a member.
	cfg2 := l.base
	cfg2.ClusterLabel = "another-cluster"
	cfg2.Groups, cfg2.DataDir, cfg2.BindAddr, cfg2.GossipBind, cfg2.Join = 1, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", l.seeds()
	cfg2.InitialVoters, cfg2.Listener = nil, nil
	m, err := Open(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitUntil(t, "two refused joins with another label", 30*time.Second, func() bool { return refusals("unacceptable label") >= 2 })
	if _, ok := l.Nodes[0].gossip.view()[m.info.ID]; ok {
		t.Fatal("a node with another cluster label became a member")
	}
}

func TestIDCollisionRefused(t *testing.T) {
	l := startLocal(t, 1, 1)
	cfg := l.base
	cfg.NodeID = l.Nodes[0].info.ID
	cfg.Groups, cfg.DataDir, cfg.BindAddr, cfg.GossipBind, cfg.Join = 1, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", l.seeds()
	cfg.InitialVoters, cfg.Listener = nil, nil
	n, err := Open(cfg)
	if err == nil {
		n.Close()
		t.Fatal("a second node with a live node's ID started")
	}
	if !errors.Is(err, ErrIDConflict) {
		t.Fatalf("want ErrIDConflict, got %v", err)
	}
}

func TestBalancedPlacement(t *testing.T) {
	l := startLocal(t, 3, 1)
	counts := map[int]int{0: 1, 1: 1, 2: 1}
	for i := 0; i < 6; i++ {
		n, err := l.AddNode(RoleExecutor, -1)
		if err != nil {
			t.Fatal(err)
		}
		counts[n.Group()]++
		// Let gossip spread the newcomer before the next one looks.
		waitUntil(t, "gossip to spread", 5*time.Second, func() bool {
			_, ok := l.Nodes[0].gossip.view()[n.info.ID]
			return ok
		})
	}
	for g, c := range counts {
		if c != 3 {
			t.Fatalf("group %d has %d nodes, want 3 each: %v", g, c, counts)
		}
	}
}

func TestQuorumLossIsReportedAndContained(t *testing.T) {
	l := startLocal(t, 2, 3)
	ctx := context.Background()
	// Kill two of group 0's three voters.
	killed := 0
	for _, n := range l.Nodes {
		if n.Group() == 0 && killed < 2 {
			n.Close()
			killed++
		}
	}
	var survivor, other *Node
	for _, n := range l.Nodes {
		select {
		case <-n.stop:
			continue
		default:
		}
		if n.Group() == 0 {
			survivor = n
		} else if other == nil {
			other = n
		}
	}
	waitUntil(t, "group 0 to lose its leader", 10*time.Second, func() bool { _, ok := survivor.Leader(); return !ok })
	// Writes to group 0 are refused, not held until the caller gives up;
	// group 1 keeps working.
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := other.Submit(cctx, txFor(0, "lost"))
	expired := cctx.Err()
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write to a group without quorum: %v", err)
	}
	if expired != nil {
		t.Fatalf("the refusal came only after the caller's deadline (%s)", time.Since(start))
	}
	submit(t, other, 1, "", "group 1 still works")
	ready, st := other.Ready(ctx)
	if ready || st.Groups[0].HasLeader || !st.Groups[1].HasLeader {
		t.Fatalf("readiness: %v %+v", ready, st.Groups)
	}
	// Nothing was removed from the leaderless group's configuration.
	cf := survivor.raft.GetConfiguration()
	if err := cf.Error(); err != nil || len(cf.Configuration().Servers) != 3 {
		t.Fatalf("configuration changed without quorum: %v", cf.Configuration().Servers)
	}
}

func TestWipedNodeRejoinsWithNewID(t *testing.T) {
	l := startLocal(t, 1, 3)
	// Take a follower down, wipe its data, and start a new node (new ID)
	// at the same raft address.
	var victim int
	for i, n := range l.Nodes {
		if !n.IsLeader() {
			victim = i
			break
		}
	}
	old := l.Nodes[victim]
	fresh := wipeAndReplace(t, l, victim)
	waitUntil(t, "the stale entry replaced by the new node, promoted", 20*time.Second, func() bool {
		ld, ok := l.Leader(0)
		if !ok {
			return false
		}
		st := ld.localStatus()
		hasNew, hasOld := false, false
		for _, m := range st.Members {
			hasNew = hasNew || m.ID == fresh.info.ID && m.Suffrage == "voter"
			hasOld = hasOld || m.ID == old.info.ID && m.Suffrage != "none"
		}
		return hasNew && !hasOld && st.Voters == 3
	})
	r := submit(t, fresh, 0, "", "after rejoin")
	waitUntil(t, "the rejoined node to replicate", 10*time.Second, func() bool {
		h, _, _ := fresh.Store().Head()
		return h.LogSize > r.Index
	})
}

// TestStaleVoterKeptWithoutHealthyQuorum: a stale voter entry (its
// address taken by a wiped node) is not removed while the voters left
// would not hold a healthy quorum, and is once they would.
func TestStaleVoterKeptWithoutHealthyQuorum(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	base.DeadServerGrace = time.Minute // only the stale-entry rule removes here
	l, p := startPartitionable(t, 1, 3, &base)
	ld := waitLeader(t, l)
	var followers []int
	for i, n := range l.Nodes {
		if n != ld {
			followers = append(followers, i)
		}
	}
	wiped, cut := followers[0], l.Nodes[followers[1]]
	old := l.Nodes[wiped]

	// One voter leaves gossip: it still replicates, so the leader keeps
	// its lease, but it no longer counts as healthy.
	p.isolate(cut)
	waitUntil(t, "the leader to see the cut voter fail", 15*time.Second, func() bool {
		h, ok := ld.rec.snapshot()[cut.info.ID]
		return ok && !h.Healthy && !h.FailedSince.IsZero()
	})
	// Another voter is wiped; a new node takes its address, which makes
	// its entry stale. Only the leader is healthy: removing the entry
	// would leave one healthy voter of two.
	fresh := wipeAndReplace(t, l, wiped)
	waitUntil(t, "the leader to see the new node at the old address", 15*time.Second, func() bool {
		m, ok := ld.gossip.view()[fresh.info.ID]
		return ok && m.state == stateAlive && m.meta.Addr == old.info.Addr
	})
	for range 3 {
		ld.rec.pass()
	}
	if !ld.IsLeader() {
		t.Fatal("leadership moved; the test needs a stable leader")
	}
	servers, _ := leaderServers(l, 0)
	if s, ok := suffrage(servers, old.info.ID); !ok || s != raft.Voter {
		t.Fatalf("stale voter removed without a healthy quorum left: %v", servers)
	}

	// The cut voter is healthy again: the stale entry goes, and the new
	// node takes its place.
	p.heal()
	waitUntil(t, "the stale entry replaced by the new node, promoted", 30*time.Second, func() bool {
		servers, ok := leaderServers(l, 0)
		if !ok {
			return false
		}
		_, oldIn := suffrage(servers, old.info.ID)
		s, _ := suffrage(servers, fresh.info.ID)
		return !oldIn && s == raft.Voter && voterCount(servers) == 3
	})
}

// TestFailedVoterRemovalKeepsQuorum: while a leader exists but two of its
// three voters have failed, nothing is removed; a single failed voter is
// removed after the grace period, and the running voters are a quorum at
// every point observed.
func TestFailedVoterRemovalKeepsQuorum(t *testing.T) {
	l, p := startPartitionable(t, 1, 3, nil)
	if _, err := l.AddNode(RoleExecutor, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the executor added", time.Minute, func() bool { _, nv := config(t, l, 0); return nv == 1 })

	// Both followers fail in gossip, past the grace period, while raft
	// still carries the leader's heartbeats: the leader leads, but its
	// healthy voters are not a quorum of any smaller configuration. On a
	// loaded machine leadership may move meanwhile, to a follower that
	// sees only the old leader failed (and may rightly remove it): then
	// the gossip heals, the group returns to three healthy voters, and
	// the case runs again with the leader of the moment.
	var followers []*Node
	for try := 1; ; try++ {
		waitUntil(t, "three healthy voters", 3*time.Minute, func() bool { return healthyVoters(l, 0) == 3 })
		ld, ok := l.Leader(0)
		if !ok {
			continue
		}
		followers = followers[:0]
		for _, n := range l.Nodes[:3] {
			if n != ld {
				followers = append(followers, n)
			}
		}
		if heldWithTwoFailed(t, l, p, ld, followers) {
			break
		}
		if try == 5 {
			t.Fatal("leadership moved in each of 5 tries; the case needs one leader throughout")
		}
		t.Logf("try %d: leadership moved from %s; healing and trying again", try, ld.ID().Short())
		p.heal()
	}
	p.heal()
	// The two come back one at a time: if the other is still failed past
	// the grace period then, the rules remove it (a healthy quorum
	// remains), and it returns as a non-voter promoted after the
	// stabilization time. Wait for both to be healthy voters again, as
	// the leader of the moment judges them.
	waitUntil(t, "the followers healthy voters again", 3*time.Minute, func() bool { return healthyVoters(l, 0) == 3 })

	// One follower stops, with no standby to replace it.
	followers[0].Close()
	down := map[string]bool{followers[0].info.ID: true}
	waitUntil(t, "the stopped voter removed", 3*time.Minute, func() bool {
		servers, ok := leaderServers(l, 0)
		if !ok {
			return false
		}
		checkHealthyQuorum(t, servers, down)
		_, in := suffrage(servers, followers[0].info.ID)
		return !in
	})
	if v, nv := configWithLeader(t, l, 0); v != 2 || nv != 1 {
		t.Fatalf("%d voters %d non-voters after the removal, want 2 and 1", v, nv)
	}
}

// heldWithTwoFailed isolates followers in gossip until ld's reconciler
// has judged both failed past the grace period, runs one more pass, and
// checks that no voter was removed. It reports false, checking nothing,
// if ld did not lead throughout.
func heldWithTwoFailed(t *testing.T, l *Local, p *partition, ld *Node, followers []*Node) bool {
	t.Helper()
	term := ld.raft.CurrentTerm()
	led := func() bool { return ld.IsLeader() && ld.raft.CurrentTerm() == term }
	p.isolate(followers...)
	waitUntil(t, "both failures past the grace period", 3*time.Minute, func() bool {
		if !led() {
			return true
		}
		snap := ld.rec.snapshot()
		for _, f := range followers {
			h := snap[f.info.ID]
			if h.FailedSince.IsZero() || time.Since(h.FailedSince) < l.base.DeadServerGrace {
				return false
			}
		}
		return true
	})
	if !led() {
		return false
	}
	ld.rec.pass()
	cf := ld.raft.GetConfiguration()
	if !led() || cf.Error() != nil {
		return false
	}
	if voterCount(cf.Configuration().Servers) != 3 {
		t.Fatalf("a voter was removed without a healthy quorum: %v", cf.Configuration().Servers)
	}
	return true
}

// healthyVoters is how many voters group g's leader has, if every one is
// healthy as its reconciler judges them; -1 otherwise.
func healthyVoters(l *Local, g int) int {
	ld, ok := l.Leader(g)
	if !ok {
		return -1
	}
	cf := ld.raft.GetConfiguration()
	if cf.Error() != nil {
		return -1
	}
	snap := ld.rec.snapshot()
	voters := 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		if h, ok := snap[string(s.ID)]; !ok || !h.Healthy {
			return -1
		}
		voters++
	}
	return voters
}

func TestPartitionAndHeal(t *testing.T) {
	l, p := startPartitionable(t, 1, 3, nil)
	alive := func(n *Node) int {
		c := 0
		for _, m := range n.gossip.view() {
			if m.state == stateAlive || m.state == stateSuspect {
				c++
			}
		}
		return c
	}
	for _, n := range l.Nodes {
		waitUntil(t, "full view", 10*time.Second, func() bool { return alive(n) == 3 })
	}
	far := l.Nodes[2]
	p.isolate(far)
	waitUntil(t, "both sides to see the partition", 15*time.Second, func() bool {
		return alive(far) == 1 && alive(l.Nodes[0]) == 2 && alive(l.Nodes[1]) == 2
	})
	p.heal()
	// The periodic re-join to seeds merges the views again.
	for _, n := range l.Nodes {
		waitUntil(t, "views to converge after the heal", 20*time.Second, func() bool { return alive(n) == 3 })
	}
	waitUntil(t, "three voters again", 20*time.Second, func() bool { v, _ := config(t, l, 0); return v == 3 })
}
