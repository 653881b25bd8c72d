package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/chain"
)

func startLocal(t *testing.T, groups, replicas int) *Local {
	t.Helper()
	return startLocalConfig(t, LocalConfig{Groups: groups, Replicas: replicas})
}

// startLocalConfig starts lc's cluster in a temporary directory and stops
// it when the test ends.
func startLocalConfig(t *testing.T, lc LocalConfig) *Local {
	t.Helper()
	lc.DataDir = t.TempDir()
	// A bound on the first elections, generous for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// logLines is a log output that keeps every line, for tests that wait
// until a node has logged something, such as a refusal.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
	return len(p), nil
}

// logger returns an info-level logger writing to l.
func (l *logLines) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: l, Level: hclog.Info})
}

// count returns how many lines contain every one of parts.
func (l *logLines) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// matching returns the lines that contain part.
func (l *logLines) matching(part string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return out
}

func submit(t *testing.T, n *Node, group int, key, payload string) Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := n.Submit(ctx, chain.Tx{Kind: chain.TxData, Group: uint32(group), IdempotencyKey: key, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("submit %q: %v", payload, err)
	}
	return r
}

func TestGroupCommitsThroughAnyNode(t *testing.T) {
	l := startLocal(t, 1, 3)
	var receipts []Receipt
	for i, n := range l.Nodes {
		receipts = append(receipts, submit(t, n, 0, "", fmt.Sprint("via node ", i)))
	}
	ctx := context.Background()
	for _, r := range receipts {
		for _, n := range l.Nodes {
			rec, g, err := n.Tx(ctx, r.ID, -1, Linearizable)
			if err != nil || g != 0 || rec.Location.Index != r.Index {
				t.Fatalf("tx %s from %s: %v", r.ID, n.id.Short(), err)
			}
			h, _, _ := n.Head(ctx, 0, Default)
			if err := chain.VerifyInclusion(rec.Location.Index, rec.TreeSize, rec.LeafHash, rec.Proof, h.LogRoot); err != nil && h.LogSize == rec.TreeSize {
				t.Fatal(err)
			}
		}
	}
}

func TestConcurrentSubmitsBatch(t *testing.T) {
	l := startLocal(t, 1, 3)
	leader := waitLeader(t, l)
	var wg sync.WaitGroup
	const clients, each = 16, 40
	errs := make(chan error, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := leader.Submit(context.Background(), chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprint(c, "/", i))})
				if err != nil {
					errs <- err
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h, _, err := leader.Head(context.Background(), 0, Default)
	if err != nil || h.LogSize != clients*each {
		t.Fatalf("log size %d, want %d (%v)", h.LogSize, clients*each, err)
	}
	if h.Height >= clients*each {
		t.Fatalf("%d blocks for %d transactions: no batching", h.Height, clients*each)
	}
}

func TestIdempotencyAcrossLeaderChange(t *testing.T) {
	l := startLocal(t, 1, 3)
	leader := waitLeader(t, l)
	first := submit(t, leader, 0, "order-1", "pay 10")
	if err := leader.TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if nl, ok := l.Leader(0); ok && nl != leader {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no new leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	again := submit(t, leader, 0, "order-1", "pay 10")
	if again.ID != first.ID || again.Index != first.Index || !again.Duplicate {
		t.Fatalf("retry after leader change: %+v vs %+v", again, first)
	}
	_, err := leader.Submit(ctx, chain.Tx{Kind: chain.TxData, IdempotencyKey: "order-1", Payload: []byte("pay 20")})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("different body under the same key: %v", err)
	}
	h, _, _ := leader.Head(ctx, 0, Linearizable)
	if h.LogSize != 1 {
		t.Fatalf("log size %d after duplicate submits", h.LogSize)
	}
}

func TestTwoGroupsCommitIndependently(t *testing.T) {
	l := startLocal(t, 2, 3)
	ctx := context.Background()
	// Every node can write to and read from both groups.
	for i, n := range l.Nodes {
		for g := 0; g < 2; g++ {
			r := submit(t, n, g, "", fmt.Sprintf("node %d group %d", i, g))
			if r.Group != g {
				t.Fatalf("receipt group %d, want %d", r.Group, g)
			}
		}
	}
	for g := 0; g < 2; g++ {
		h, ok, err := l.Nodes[0].Head(ctx, g, Linearizable)
		if err != nil || !ok || h.LogSize != uint64(len(l.Nodes)) || h.Group != uint32(g) {
			t.Fatalf("group %d head %+v %v", g, h, err)
		}
	}
	st := l.Nodes[0].Status(ctx)
	for _, g := range st.Groups {
		if !g.HasLeader || len(g.Members) != 3 {
			t.Fatalf("status of group %d: %+v", g.Group, g)
		}
	}
	if ready, _ := l.Nodes[3].Ready(ctx); !ready {
		t.Fatal("not ready")
	}
}

func TestSubmitRejectsBadInput(t *testing.T) {
	l := startLocal(t, 1, 1)
	n := l.Nodes[0]
	ctx := context.Background()
	if _, err := n.Submit(ctx, chain.Tx{Kind: chain.TxData, Group: 5}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown group: %v", err)
	}
	if _, err := n.Submit(ctx, chain.Tx{Kind: chain.TxData, Payload: make([]byte, chain.MaxPayloadSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, _, err := n.Tx(ctx, chain.Hash{9}, -1, Default); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tx: %v", err)
	}
	if _, err := n.Block(ctx, 0, 99, Default); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown block: %v", err)
	}
	if _, err := n.Consistency(ctx, 0, 1, 50, Default); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad range: %v", err)
	}
	if _, err := ParseLevel("strong"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad level: %v", err)
	}
}

// openOutsideGossip starts a node of group 0 whose only gossip seed is
// dead, so no reconciler adds it until the test joins it to gossip.
func openOutsideGossip(t *testing.T, l *Local, role Role) *Node {
	t.Helper()
	cfg := l.base
	cfg.NodeID = NewNodeIDInGroup(0, l.groups).String()
	cfg.Role = role
	cfg.Groups = l.groups
	cfg.DataDir = t.TempDir()
	cfg.BindAddr, cfg.GossipBind = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = []string{"127.0.0.1:1"}
	cfg.InitialVoters, cfg.Listener = nil, nil
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestExplicitJoinAddsNonVoter: an explicit join gives no vote; the
// reconciler promotes a voter-role node once it is stable, never an
// executor; a repeated join keeps the member as it is, and a join under a
// live node's ID at another address is refused.
func TestExplicitJoinAddsNonVoter(t *testing.T) {
	for _, tc := range []struct {
		role Role
		want string // suffrage once stable
	}{
		{RoleVoter, "voter"},
		{RoleExecutor, "nonvoter"},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			base := DefaultConfig()
			base.LoopbackTiming()
			base.DeadServerGrace = time.Minute // the joined node is not in gossip at first
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			l, err := StartLocal(ctx, LocalConfig{Groups: 1, Replicas: 1, DataDir: t.TempDir(), Base: &base})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			ld := l.Nodes[0]
			n := openOutsideGossip(t, l, tc.role)
			id := n.Info().ID

			if _, err := ld.Join(ctx, n.Info()); err != nil {
				t.Fatal(err)
			}
			if s := suffrageOf(l, 0, id); s != "nonvoter" {
				t.Fatalf("after an explicit join: suffrage %q, want nonvoter", s)
			}

			// Gossip shows the node: the reconciler's rules decide.
			if _, err := n.gossip.ml.Join(l.seeds()); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the leader to find the node stable", 15*time.Second, func() bool {
				return ld.rec.snapshot()[id].Stable
			})
			if tc.want == "voter" {
				waitUntil(t, "promotion", 10*time.Second, func() bool { return suffrageOf(l, 0, id) == "voter" })
			} else {
				ld.rec.pass()
				if s := suffrageOf(l, 0, id); s != tc.want {
					t.Fatalf("stable %s: suffrage %q, want %q", tc.role, s, tc.want)
				}
			}

			if _, err := ld.Join(ctx, n.Info()); err != nil {
				t.Fatalf("repeated join: %v", err)
			}
			if s := suffrageOf(l, 0, id); s != tc.want {
				t.Fatalf("after a repeated join: suffrage %q, want %q", s, tc.want)
			}
			moved := n.Info()
			moved.Addr = "127.0.0.1:1"
			if _, err := ld.Join(ctx, moved); !errors.Is(err, ErrIDConflict) {
				t.Fatalf("join under a live node's ID at another address: %v, want ErrIDConflict", err)
			}
		})
	}
}
