package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Releases of the rolling upgrade test: the same source built twice, the
// new one advertising protocol 2 (and so speaking 2 and 1).
const (
	oldRelease = "1.0.0-old"
	newRelease = "1.1.0-new"
)

// buildRelease compiles qledger into dir/name with version linked in,
// and protocol (if not "") as its protocol version. With rev set, the
// source is that git revision of this repository instead of the working
// tree.
func buildRelease(t *testing.T, dir, name, version, protocol, rev string) string {
	t.Helper()
	ldflags := "-X main.version=" + version
	if protocol != "" {
		ldflags += " -X qledger/cluster.protocolBuild=" + protocol
	}
	bin := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./cmd/qledger")
	build.Dir = repoRoot(t)
	if rev != "" {
		build.Dir = filepath.Join(dir, name+"-src")
		if err := os.MkdirAll(build.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		archive := fmt.Sprintf("git -C %q archive --format=tar %q | tar -x -C %q", repoRoot(t), rev, build.Dir)
		if out, err := exec.Command("sh", "-c", archive).CombinedOutput(); err != nil {
			t.Fatalf("source of %s: %v\n%s", rev, err, out)
		}
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestRollingUpgrade follows the README's upgrade procedure on 2 groups ×
// 3 nodes, each a process on a host of its own, while one writer per
// group writes without pause: every node in turn is handed off (its
// group's leadership transferred with `qledger cluster transfer-leader`
// if it leads), stopped with SIGTERM, and started again with the same
// data directory and configuration on the new binary — group 0's nodes
// leave their group as they stop and are added back and promoted (the
// README's graceful leave), group 1's stop in place
// (QLEDGER_LEAVE_ON_TERMINATE=false) and resume as voters, so both
// procedures run across every mix of releases; the next node goes only once the group's leader reports it a
// healthy voter with no raft lag, on the new version and protocol. At the
// end every acknowledged write is in its group's chain exactly once, at
// its receipt's index, with an inclusion proof that verifies; the chains
// verify; no node refused a peer for its protocol version; and `qledger
// cluster status` shows every member on the new release and protocol 2.
//
// What it proves: nodes of two builds, one speaking protocol 1 and the
// other 2 and 1, run one cluster at every mix from six old to six new,
// and the procedure loses and duplicates nothing. What it does not, by
// default: both builds come from this source tree, so no format differs
// between them; reading an entry or a peer of a version a node does not
// know is tested by fsm's TestApplyStopsAtNewerVersion and cluster's
// TestProtocolNegotiation. QLEDGER_UPGRADE_FROM=REV builds the old
// release from that git revision instead (git archive, so it needs the
// history: a clean clone has it, a source tarball does not), which runs an
// earlier release's code; it is not the default because make test must
// run where there is no history, and the revision to upgrade from is a
// release manager's choice.
func TestRollingUpgrade(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	start := time.Now()
	dir := t.TempDir()
	from := os.Getenv("QLEDGER_UPGRADE_FROM")
	oldBin := buildRelease(t, dir, "qledger-old", oldRelease, "", from)
	newBin := buildRelease(t, dir, "qledger-new", newRelease, "2", "")
	if from != "" {
		t.Logf("the old release is built from git revision %s", from)
	}
	lab := newTestLab(t, "u1", "u2", "u3", "u4", "u5", "u6")
	f := newFleet(t, lab, oldBin, filepath.Join(dir, "fleet"), 2)
	f.inPlace = map[int]bool{1: true}
	seeds := gossipAddrs(lab.Hosts...)
	for i, h := range lab.Hosts {
		f.add(h, i/3, seeds)
	}
	f.waitHealthy(ctx, 3, 2*time.Minute)
	// A release from before versioning reports no protocol (0), for
	// itself or, while it leads, for others.
	oldProtocol, unreported := 1, []int(nil)
	if from != "" {
		oldProtocol, unreported = 0, []int{0}
	}
	for _, n := range f.Nodes {
		waitMember(t, f, n, oldRelease, oldProtocol)
	}
	t.Logf("2 groups × 3 nodes on %s healthy after %v", oldRelease, time.Since(start).Round(time.Millisecond))

	stop := f.writers("upgrade", 1, 50*time.Millisecond)
	f.bin = newBin // every start from here runs the new release
	for _, n := range f.Nodes {
		began := time.Now()
		f.handOff(ctx, n)
		stopGracefully(t, n, 30*time.Second)
		if log, _ := os.ReadFile(n.log.Name()); from == "" && f.inPlace[f.groupOf[n]] != strings.Contains(string(log), "staying a member of the cluster") {
			t.Fatalf("%s (group %d, in place: %v) did not stop as asked:\n%s", n.Name, f.groupOf[n], f.inPlace[f.groupOf[n]], log)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		waitMember(t, f, n, newRelease, 2, unreported...)
		t.Logf("%s (group %d) upgraded in %v", n.Name, f.groupOf[n], time.Since(began).Round(time.Millisecond))
	}
	hs := stop()
	f.waitHealthy(ctx, 3, time.Minute)
	if acked := f.checkGroups(ctx, hs); acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	for _, n := range f.Nodes {
		if log, _ := os.ReadFile(n.log.Name()); strings.Contains(string(log), "no common protocol version") {
			t.Fatalf("%s refused a peer for its protocol version", n.Name)
		}
	}
	f.cliUntil(time.Minute, func(out string) bool { return strings.Count(out, "version "+newRelease+"  protocol 2") == len(f.Nodes) },
		append([]string{"cluster", "status", "--addr", addr(f.Nodes[0])}, f.as("admin")...)...)
	t.Logf("rolling upgrade of %d nodes under writes done in %v", len(f.Nodes), time.Since(start).Round(time.Millisecond))
}

// handOff transfers n's group's leadership away if n holds it, with the
// CLI as an operator would, and waits until another node leads.
func (f *fleet) handOff(ctx context.Context, n *Node) {
	f.t.Helper()
	g := f.groupOf[n]
	leads := func() bool {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		st, err := n.API.Cluster(sctx)
		if err != nil {
			return false
		}
		for _, gs := range st.Groups {
			if gs.Group == g {
				return gs.State == "Leader"
			}
		}
		return false
	}
	if !leads() {
		return
	}
	f.cliUntil(time.Minute, anyOutput, append([]string{"cluster", "transfer-leader", "--group", strconv.Itoa(g), "--addr", addr(n)}, f.as("admin")...)...)
	// member answers only from a node that leads the group.
	var other *Node
	for _, m := range f.Nodes {
		if m != n && f.groupOf[m] == g {
			other = m
		}
	}
	waitFor(f.t, fmt.Sprintf("another node to lead group %d", g), time.Minute, func() bool {
		_, ok := f.member(ctx, other)
		return ok && !leads()
	})
}

// stopGracefully sends n SIGTERM (a graceful leave) and waits for its
// process to exit, at most d.
func stopGracefully(t *testing.T, n *Node, d time.Duration) {
	t.Helper()
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v of SIGTERM", n.Name, d)
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
}

// waitMember waits until n's group leader reports n a healthy voter (not
// trailing its log: see cluster.Member), running version and speaking
// protocol (or also, while the leader may run the old release, any of
// orReported: a leader from before versioning reports none).
func waitMember(t *testing.T, f *fleet, n *Node, version string, protocol int, orReported ...int) {
	t.Helper()
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m, ok := f.member(context.Background(), n)
		if ok && m.Suffrage == "voter" && m.Healthy && m.RaftLag != nil && m.Version == version && slices.Contains(append(orReported, protocol), m.Protocol) {
			return
		}
		last = fmt.Sprintf("%+v (found %v)", m, ok)
		if time.Now().After(deadline) {
			t.Fatalf("%s not a healthy voter on %s protocol %d after 2m: %s", n.Name, version, protocol, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
