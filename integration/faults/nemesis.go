package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"time"
)

// A Nemesis is one named fault. Start injects it into a cluster and
// returns what undoes it; rng makes its choices (which node, which half),
// so a seed replays a schedule. Nemeses compose: see Compose.
type Nemesis struct {
	Name  string
	Start func(ctx context.Context, c *Cluster, rng *rand.Rand) (heal func() error, err error)
}

// others is every node of c but those in not.
func others(c *Cluster, not ...*Node) []*Node {
	var out []*Node
next:
	for _, n := range c.Nodes {
		for _, x := range not {
			if n == x {
				continue next
			}
		}
		out = append(out, n)
	}
	return out
}

func hosts(ns []*Node) []*Host {
	out := make([]*Host, len(ns))
	for i, n := range ns {
		out[i] = n.Host
	}
	return out
}

// partition cuts a from b until healed.
func partition(c *Cluster, a, b []*Node) (func() error, error) {
	if err := c.Lab.Cut(hosts(a), hosts(b)); err != nil {
		c.Lab.Mend(hosts(a), hosts(b))
		return nil, err
	}
	return func() error { return c.Lab.Mend(hosts(a), hosts(b)) }, nil
}

// shuffled is c's nodes in an order rng chose.
func shuffled(c *Cluster, rng *rand.Rand) []*Node {
	ns := append([]*Node(nil), c.Nodes...)
	rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
	return ns
}

// noop heals a nemesis that found nothing to act on.
func noop() error { return nil }

// leaderOrNone waits a while for a leader to target. Composed with a
// fault that leaves no quorum there is none; the leader nemesis then does
// nothing rather than fail the schedule.
func leaderOrNone(ctx context.Context, c *Cluster) (*Node, bool) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ld, err := c.Leader(ctx); err == nil {
			return ld, true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The nemeses.
var (
	// IsolateLeader cuts the leader from every other node, all traffic
	// (clients still reach it).
	IsolateLeader = Nemesis{Name: "isolate-leader", Start: func(ctx context.Context, c *Cluster, _ *rand.Rand) (func() error, error) {
		ld, ok := leaderOrNone(ctx, c)
		if !ok {
			return noop, nil
		}
		return partition(c, []*Node{ld}, others(c, ld))
	}}
	// Halves splits the nodes at random into a minority and a majority.
	Halves = Nemesis{Name: "halves", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		ns := shuffled(c, rng)
		k := (len(ns) - 1) / 2
		return partition(c, ns[:k], ns[k:])
	}}
	// Bridge splits the nodes into two halves that cannot reach each
	// other but both reach one bridge node.
	Bridge = Nemesis{Name: "bridge", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		ns := shuffled(c, rng)
		if len(ns) < 3 {
			return nil, errors.New("faults: a bridge needs three nodes")
		}
		rest := ns[1:] // ns[0] is the bridge
		k := len(rest) / 2
		return partition(c, rest[:k], rest[k:])
	}}
	// OneWayFromLeader drops everything the leader sends to the other
	// nodes while what they send it still arrives.
	OneWayFromLeader = Nemesis{Name: "one-way-from-leader", Start: func(ctx context.Context, c *Cluster, _ *rand.Rand) (func() error, error) {
		ld, ok := leaderOrNone(ctx, c)
		if !ok {
			return noop, nil
		}
		rest := others(c, ld)
		for _, n := range rest {
			if err := c.Lab.Drop(n.Host, ld.Host); err != nil {
				return nil, err
			}
		}
		return func() error {
			var first error
			for _, n := range rest {
				if err := c.Lab.Restore(n.Host, ld.Host); err != nil && first == nil {
					first = err
				}
			}
			return first
		}, nil
	}}
	// PauseLeader SIGSTOPs the leader; healing SIGCONTs it.
	PauseLeader = Nemesis{Name: "pause-leader", Start: func(ctx context.Context, c *Cluster, _ *rand.Rand) (func() error, error) {
		ld, ok := leaderOrNone(ctx, c)
		if !ok {
			return noop, nil
		}
		if err := ld.Signal(syscall.SIGSTOP); err != nil {
			return nil, err
		}
		return func() error { return ld.Signal(syscall.SIGCONT) }, nil
	}}
	// KillOne SIGKILLs a random node; healing restarts it.
	KillOne = Nemesis{Name: "kill-one", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		return kill(shuffled(c, rng)[:1])
	}}
	// KillMajority SIGKILLs a random majority at once; healing restarts
	// them.
	KillMajority = Nemesis{Name: "kill-majority", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		return kill(shuffled(c, rng)[:len(c.Nodes)/2+1])
	}}
	// DiskFullLeader fills the file system of the leader's data
	// directory (Options.DataSize); healing frees the space again. The
	// node is not restarted: it must resume by itself.
	DiskFullLeader = Nemesis{Name: "disk-full-leader", Start: func(ctx context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		ld, ok := leaderOrNone(ctx, c)
		if !ok {
			ld = shuffled(c, rng)[0]
		}
		return fill(ld)
	}}
	// DiskFullOne fills a random node's data directory.
	DiskFullOne = Nemesis{Name: "disk-full-one", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		return fill(shuffled(c, rng)[0])
	}}
)

// LeaveOne makes a random node leave the cluster gracefully (SIGTERM, as
// `qledger node leave` does: it hands over leadership, leaves gossip and
// the group's raft configuration, and exits); healing starts it again on
// its data directory, and the leader adds it back as a voter.
//
// A node that cannot complete its leave (cut off from the majority, its
// removal cannot commit) is killed after 30 s: its leave is then
// unclean, which the group handles like a failed node.
var LeaveOne = Nemesis{Name: "leave-one", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
	n := shuffled(c, rng)[0]
	if err := n.Stop(syscall.SIGTERM, 30*time.Second); err != nil && !errors.Is(err, ErrNotExited) {
		return nil, err
	}
	return func() error {
		if n.Running() {
			return nil // composed: another heal started it
		}
		return n.Start()
	}, nil
}}

// LeaveBound is how long a node given SIGTERM may take to exit when it
// cannot complete its leave: cut off from every other node, it gives up
// on reaching a leader after cluster.LeaveTimeout (10 s), then stops
// serving (requests in flight get what is left of 15 s) and closes; the
// rest is margin for a loaded machine. It took 13.3–15.8 s in seven runs
// at load averages of 10–19 on two cores, but once more than 20 s under
// -race (what held it was not recorded; a node that overruns now dumps
// its goroutines into its log). Before the fix it took 19–23 s, and more
// than 30 s in an earlier run.
const LeaveBound = 30 * time.Second

// LeaveCutOff cuts a random node off from every other node and then
// SIGTERMs it: it cannot complete its leave (no leader it can reach), and
// must exit anyway within LeaveBound, or the nemesis fails. Healing mends
// the network and starts it again on its data directory; the group adds
// it back.
var LeaveCutOff = Nemesis{Name: "leave-cut-off", Start: func(_ context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
	n := shuffled(c, rng)[0]
	mend, err := partition(c, []*Node{n}, others(c, n))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := n.Stop(syscall.SIGTERM, LeaveBound); err != nil {
		mend()
		return nil, fmt.Errorf("faults: %s, cut off, after SIGTERM: %w", n.Name, err)
	}
	c.logf("%s, cut off, exited %v after SIGTERM", n.Name, time.Since(start).Round(time.Millisecond))
	return func() error {
		if err := mend(); err != nil {
			return err
		}
		if n.Running() {
			return nil // composed: another heal started it
		}
		return n.Start()
	}, nil
}}

// StandbyJoins starts a standby — a voter-role node on a fresh data
// directory (Options.Standbys) — which joins the group by gossip while
// the step (and whatever it is composed with) runs: the leader adds it as
// a non-voter, and promotes it only to replace a failed voter. Healing
// stops it gracefully (SIGTERM: it leaves) and it must exit within
// LeaveBound.
var StandbyJoins = Nemesis{Name: "standby-joins", Start: func(ctx context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
	if len(c.Standbys) == 0 {
		return nil, errors.New("faults: standby-joins needs a standby host (Options.Standbys)")
	}
	return startSpares(ctx, c, c.Standbys[rng.IntN(len(c.Standbys)):][:1])
}}

// ExecutorsScale scales the group's executors out: every executor node
// (`qledger node --role executor`, Options.Executors) starts on a fresh
// data directory and joins; they take part in the elections of the
// invocations that follow. Healing scales them in again: each gets
// SIGTERM (it leaves its group, draining) and must exit within
// LeaveBound.
var ExecutorsScale = Nemesis{Name: "executors-scale", Start: func(ctx context.Context, c *Cluster, _ *rand.Rand) (func() error, error) {
	if len(c.Executors) == 0 {
		return nil, errors.New("faults: executors-scale needs executor hosts (Options.Executors)")
	}
	return startSpares(ctx, c, c.Executors)
}}

// startSpares starts ns on fresh data directories; healing logs what the
// group's leader made of them, stops them all with SIGTERM at once, and
// fails if one does not exit within LeaveBound. Spares already running
// (composed) are left to the heal that started them.
func startSpares(ctx context.Context, c *Cluster, ns []*Node) (func() error, error) {
	var started []*Node
	for _, n := range ns {
		if n.Running() {
			continue
		}
		if err := os.RemoveAll(n.data); err != nil {
			return nil, err
		}
		if err := n.Start(); err != nil {
			stopSpares(c, started)
			return nil, err
		}
		started = append(started, n)
	}
	return func() error {
		c.logf("%s", c.spareReport(ctx, started))
		return stopSpares(c, started)
	}, nil
}

// stopSpares sends every node of ns SIGTERM at once and waits for them
// to exit; the first that does not within LeaveBound is the error.
func stopSpares(c *Cluster, ns []*Node) error {
	errs := make(chan error, len(ns))
	for _, n := range ns {
		go func() {
			start := time.Now()
			err := n.Stop(syscall.SIGTERM, LeaveBound)
			if err == nil {
				c.logf("%s exited %v after SIGTERM", n.Name, time.Since(start).Round(time.Millisecond))
			}
			errs <- err
		}()
	}
	var first error
	for range ns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// spareReport says how the group's leader sees the spares: how many
// executors are alive, how many members are non-voters, and voters.
func (c *Cluster) spareReport(ctx context.Context, spares []*Node) string {
	names := make([]string, len(spares))
	for i, n := range spares {
		names[i] = n.Name
	}
	ld, err := c.Leader(ctx)
	if err != nil {
		return fmt.Sprintf("spares %v: no leader to ask (%v)", names, err)
	}
	st, err := ld.Status(ctx)
	if err != nil {
		return fmt.Sprintf("spares %v: %s: %v", names, ld.Name, err)
	}
	var executors, nonvoters, voters int
	for _, m := range st.Members {
		switch {
		case m.Role == "executor" && m.Gossip == "alive":
			executors++
		case m.Suffrage == "nonvoter":
			nonvoters++
		case m.Suffrage == "voter":
			voters++
		}
	}
	return fmt.Sprintf("spares %v: leader %s sees %d executors alive, %d non-voters, %d voters", names, ld.Name, executors, nonvoters, voters)
}

// All is every nemesis, in the order the short schedule runs them.
var All = []Nemesis{IsolateLeader, Halves, Bridge, OneWayFromLeader, PauseLeader, KillOne, KillMajority, DiskFullLeader, DiskFullOne, LeaveOne, LeaveCutOff, StandbyJoins, ExecutorsScale}

// fill fills n's data directory's file system with a file; healing
// removes it. Composed fills of one node each add a file.
func fill(n *Node) (func() error, error) {
	if !n.mounted {
		return nil, errors.New("faults: disk-full needs data directories on a file system of their own (Options.DataSize)")
	}
	f, err := os.CreateTemp(n.data, "faults-fill-*")
	if err != nil {
		return nil, fmt.Errorf("faults: fill %s: %w", n.Name, err)
	}
	defer f.Close()
	remove := func() error { return os.Remove(f.Name()) }
	buf := make([]byte, 1<<20)
	for len(buf) >= 512 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				remove()
				return nil, fmt.Errorf("faults: fill %s: %w", n.Name, err)
			}
			buf = buf[:len(buf)/2] // top up what is left
		}
	}
	return remove, nil
}

func kill(ns []*Node) (func() error, error) {
	for _, n := range ns {
		n.Kill()
	}
	return func() error {
		var first error
		for _, n := range ns {
			if n.Running() {
				continue // composed kills: another heal restarted it
			}
			if err := n.Start(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}

// Compose is a nemesis that starts each of ns in turn and heals them in
// reverse order. If one fails to start, those already started are healed.
func Compose(ns ...Nemesis) Nemesis {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.Name
	}
	return Nemesis{Name: strings.Join(parts, "+"), Start: func(ctx context.Context, c *Cluster, rng *rand.Rand) (func() error, error) {
		var heals []func() error
		healAll := func() error {
			var first error
			for i := len(heals) - 1; i >= 0; i-- {
				if err := heals[i](); err != nil && first == nil {
					first = err
				}
			}
			return first
		}
		for _, n := range ns {
			h, err := n.Start(ctx, c, rng)
			if err != nil {
				healAll()
				return nil, fmt.Errorf("faults: %s: %w", n.Name, err)
			}
			heals = append(heals, h)
		}
		return healAll, nil
	}}
}
