package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

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

func TestNewNodesAreAddedThenPromoted(t *testing.T) {
	l := startLocal(t, 1, 1)
	ctx := context.Background()
	a, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a added as non-voter or voter", 10*time.Second, func() bool { v, nv := config(t, l, 0); return v+nv == 2 })
	b, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := l.AddNode(RoleExecutor, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "3 voters and the executor as non-voter", 15*time.Second, func() bool { v, nv := config(t, l, 0); return v == 3 && nv == 1 })
	// A fourth voter-role node stays a standby: the target is 3.
	standby, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "standby added", 10*time.Second, func() bool { v, nv := config(t, l, 0); return v == 3 && nv == 2 })
	time.Sleep(2 * l.base.StabilizationTime)
	if v, nv := config(t, l, 0); v != 3 || nv != 2 {
		t.Fatalf("after stabilization: %d voters %d non-voters, want 3 and 2", v, nv)
	}
	// Every node, including the executor, replicates the chain.
	r := submit(t, exec, 0, "", "via executor")
	for _, n := range []*Node{a, b, exec, standby} {
		waitUntil(t, "replication to "+n.ID().Short(), 10*time.Second, func() bool {
			h, _, _ := n.Store().Head()
			return h.LogSize > r.Index
		})
	}
	// A voter fails: the standby is promoted, then the failed voter removed.
	victim := a
	if victim.IsLeader() {
		victim = b
	}
	victim.Close()
	waitUntil(t, "standby promoted and failed voter removed", 20*time.Second, func() bool {
		ld, ok := l.Leader(0)
		if !ok {
			return false
		}
		st := groupStatus(ld)
		promoted := false
		for _, m := range st.Members {
			if m.ID == standby.info.ID && m.Suffrage == "voter" {
				promoted = true
			}
			if m.ID == victim.info.ID && m.Suffrage != "none" {
				return false
			}
		}
		return promoted && st.Voters == 3
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
	if _, nv := config(t, l, 0); nv != 0 {
		t.Fatalf("%d non-voters after a graceful leave", nv)
	}
	// The leader itself leaves: leadership moves first.
	ld, _ := l.Leader(0)
	if err := ld.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	ld.Close()
	waitUntil(t, "a new leader with 2 voters", 10*time.Second, func() bool { v, _ := config(t, l, 0); return v == 2 })
}

func TestWrongGossipKeyNeverJoins(t *testing.T) {
	l := startLocal(t, 1, 1)
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
	time.Sleep(time.Second)
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
	time.Sleep(time.Second)
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
	// Writes to group 0 are refused quickly; group 1 keeps working.
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err := other.Submit(cctx, txFor(0, "lost"))
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write to a group without quorum: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("refusal took %s", el)
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
	addr := old.info.Addr
	old.Close()
	cfg := l.configs[victim]
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
	defer fresh.Close()
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

func TestPartitionAndHeal(t *testing.T) {
	var (
		mu      sync.Mutex
		cut     = map[string]bool{} // gossip addresses on the far side
		healing bool
	)
	blocked := func(from, to string) bool {
		mu.Lock()
		defer mu.Unlock()
		return !healing && cut[from] != cut[to]
	}
	base := DefaultConfig()
	base.LoopbackTiming()
	base.GossipBlocked = blocked
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Groups: 1, Replicas: 3, DataDir: t.TempDir(), Base: &base})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
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
	mu.Lock()
	cut[far.gossipAddr] = true
	mu.Unlock()
	waitUntil(t, "both sides to see the partition", 15*time.Second, func() bool {
		return alive(far) == 1 && alive(l.Nodes[0]) == 2 && alive(l.Nodes[1]) == 2
	})
	mu.Lock()
	healing = true
	mu.Unlock()
	// The periodic re-join to seeds merges the views again.
	for _, n := range l.Nodes {
		waitUntil(t, "views to converge after the heal", 20*time.Second, func() bool { return alive(n) == 3 })
	}
	waitUntil(t, "three voters again", 20*time.Second, func() bool { v, _ := config(t, l, 0); return v == 3 })
}
