package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"qledger/chain"
	"qledger/cluster"
)

// settleDeadline bounds a wait for a group to be back to three healthy
// voters. It is a deadline for a condition, not an expected time: on an
// idle machine the repair takes a few seconds.
const settleDeadline = 3 * time.Minute

// minChurnAvailability is the fraction of TestChurn's submissions that must
// be acknowledged (each has a 3 s timeout); the refusals come from group
// 0's leader kills and the elections after them. Measured: 99.68% to
// 99.97% on an otherwise idle 2-core machine, 99.78% to 99.97% under -race
// with a CPU hog on one core (docs/BENCHMARKS.md); under -race on the same
// machine shared with other work, 97.57% at load 13 and 82.97% at load 10,
// and 1.26% with a CPU hog on both cores on top (load 16 to 18), where
// groups stayed leaderless for minutes. The floor is for a shared CI
// machine: it fails when writes fail wholesale, not on a busy scheduler;
// compare against the idle figures by hand.
const minChurnAvailability = 0.5

// TestChurn runs 3 groups while voters and executors join and leave every
// few seconds and group 0's leader is killed twice, with clients writing
// all along. At the end every acknowledged write is in its group's chain
// exactly once, every group has a leader and its target voter count, and
// the replicas of each group agree on the head. Voter faults (a voter
// leaving, the leader killed) come one at a time: each waits until the
// group is back to three healthy voters.
func TestChurn(t *testing.T) {
	duration := 55 * time.Second
	if testing.Short() {
		duration = 15 * time.Second
	}
	const groups = 3
	l := startLocal(t, groups, 3, nil)
	var (
		mu      sync.Mutex
		running []*cluster.Node // nodes that may serve clients
	)
	running = append(running, l.Nodes...)
	voterRole := map[*cluster.Node]bool{} // started with role voter
	for _, n := range l.Nodes {
		voterRole[n] = true
	}
	pick := func() *cluster.Node {
		mu.Lock()
		defer mu.Unlock()
		return running[rand.IntN(len(running))]
	}
	drop := func(n *cluster.Node) {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range running {
			if r == n {
				running = append(running[:i], running[i+1:]...)
				return
			}
		}
	}

	// Clients.
	var (
		acksMu   sync.Mutex
		acks     [groups][]ack
		ok, fail atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for c := 0; c < 12; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				g := (c + i) % groups
				p := fmt.Sprintf("c%d-%d", c, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				r, err := pick().Submit(ctx, chain.Tx{Kind: chain.TxData, Group: uint32(g), Payload: []byte(p)})
				cancel()
				if err != nil {
					fail.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				ok.Add(1)
				acksMu.Lock()
				acks[g] = append(acks[g], ack{r, p})
				acksMu.Unlock()
			}
		}(c)
	}

	// settled waits until group g's leader reports its target of three
	// healthy voters. The churn injects one voter fault at a time: a
	// group of three survives one lost voter, and the test checks that
	// the reconciler restores three before the next fault arrives, not
	// that a group survives two faults inside one repair window (no
	// configuration of three voters can).
	settled := func(g int, before string) {
		t0 := time.Now()
		for {
			if ld, okk := l.Leader(g); okk {
				st := ld.Status(context.Background()).Groups[g]
				if st.Voters == 3 && st.HealthyVoters == 3 {
					if d := time.Since(t0); d > time.Second {
						t.Logf("group %d back to 3 healthy voters after %v, before %s", g, d.Round(time.Millisecond), before)
					}
					return
				}
			}
			// A generous bound: on a loaded machine the repair takes
			// as long as the reconciler's passes take to run.
			if time.Since(t0) > settleDeadline {
				logViews(t, l.Nodes, g)
				t.Fatalf("group %d did not return to 3 healthy voters within %v (before %s)", g, settleDeadline, before)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	isVoter := func(n *cluster.Node) bool {
		ld, okk := l.Leader(n.Group())
		if !okk {
			return true // unknown: treat as a voter fault
		}
		for _, m := range ld.Status(context.Background()).Groups[n.Group()].Members {
			if m.ID == n.ID().String() {
				return m.Suffrage == "voter"
			}
		}
		return false
	}

	// Churn.
	var extra []*cluster.Node
	leaveOne := func() {
		if len(extra) == 0 {
			return
		}
		i := rand.IntN(len(extra))
		n := extra[i]
		if isVoter(n) {
			settled(n.Group(), "a voter leaves")
		}
		extra = append(extra[:i], extra[i+1:]...)
		drop(n)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.Leave(ctx); err != nil {
			t.Logf("leave %s: %v", n.ID().Short(), err)
		}
		cancel()
		n.Close()
	}
	killLeader := func(g int) {
		settled(g, "its leader is killed")
		ld, okk := l.Leader(g)
		if !okk {
			t.Logf("group %d has no leader to kill", g)
			return
		}
		drop(ld)
		ld.Close()
		t.Logf("killed the leader of group %d (%s)", g, ld.ID().Short())
	}
	start := time.Now()
	step := 0
	kills := 0
	for time.Since(start) < duration {
		time.Sleep(2 * time.Second)
		step++
		switch {
		case step%3 == 0:
			leaveOne()
		default:
			role, g := cluster.RoleExecutor, -1
			if step%2 == 0 {
				// Voter-role nodes for group 0 become its standbys.
				role, g = cluster.RoleVoter, 0
			}
			n, err := l.AddNode(role, g)
			if err != nil {
				t.Fatalf("add node: %v", err)
			}
			extra = append(extra, n)
			mu.Lock()
			voterRole[n] = role == cluster.RoleVoter
			running = append(running, n)
			mu.Unlock()
		}
		if kills < 2 && time.Since(start) > time.Duration(kills+1)*duration/3 {
			killLeader(0)
			kills++
		}
	}
	close(stop)
	wg.Wait()
	total := ok.Load() + fail.Load()
	availability := float64(ok.Load()) / float64(max(total, 1))
	t.Logf("%d writes acknowledged, %d refused: availability %.2f%%", ok.Load(), fail.Load(), 100*availability)
	if availability < minChurnAvailability {
		t.Fatalf("availability %.2f%% (%d of %d writes acknowledged), want at least %.0f%%", 100*availability, ok.Load(), total, 100*minChurnAvailability)
	}

	// The random leaves may have taken every voter-role standby of group
	// 0; the target voter count can only be met with three voter-role
	// nodes alive, so top the group up as an operator would.
	mu.Lock()
	voters0 := 0
	for _, n := range running {
		if n.Group() == 0 && voterRole[n] {
			voters0++
		}
	}
	mu.Unlock()
	for ; voters0 < 3; voters0++ {
		n, err := l.AddNode(cluster.RoleVoter, 0)
		if err != nil {
			t.Fatalf("add node: %v", err)
		}
		t.Logf("added voter-role node %s to group 0 for the target voter count", n.ID().Short())
		mu.Lock()
		running = append(running, n)
		mu.Unlock()
	}

	// Convergence: leaders, target voter counts, identical heads.
	mu.Lock()
	alive := append([]*cluster.Node(nil), running...)
	mu.Unlock()
	for g := 0; g < groups; g++ {
		deadline := time.Now().Add(settleDeadline)
		for {
			ld, okk := l.Leader(g)
			if okk {
				st := ld.Status(context.Background()).Groups[g]
				if st.Voters == 3 && st.HealthyVoters == 3 {
					break
				}
			}
			if time.Now().After(deadline) {
				logViews(t, alive, g)
				t.Fatalf("group %d: no leader with 3 healthy voters", g)
			}
			time.Sleep(50 * time.Millisecond)
		}
		ld, _ := l.Leader(g)
		if len(acks[g]) == 0 {
			t.Fatalf("group %d: no write acknowledged", g)
		}
		checkAcked(t, ld, g, acks[g])
		var members []*cluster.Node
		st := ld.Status(context.Background()).Groups[g]
		inConfig := map[string]bool{}
		for _, m := range st.Members {
			if m.Suffrage != "none" {
				inConfig[m.ID] = true
			}
		}
		for _, n := range alive {
			if n.Group() == g && inConfig[n.ID().String()] {
				members = append(members, n)
			}
		}
		sameHeads(t, members, g)
		verifyStores(t, members)
	}
}

// logViews logs how each running node of group g sees the group.
func logViews(t *testing.T, nodes []*cluster.Node, g int) {
	t.Helper()
	for _, n := range nodes {
		if n.Group() != g {
			continue
		}
		st := n.Status(context.Background()).Groups[g]
		if st.State == "Shutdown" {
			continue
		}
		t.Logf("node %s sees group %d: state %s leader %.12s voters %d healthy %d", n.ID().Short(), g, st.State, st.Leader, st.Voters, st.HealthyVoters)
		for _, m := range st.Members {
			t.Logf("  %.12s %s %s gossip %s healthy %v %s", m.ID, m.Suffrage, m.Role, m.Gossip, m.Healthy, m.Reason)
		}
	}
}
