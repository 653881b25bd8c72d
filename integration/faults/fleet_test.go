package faults

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/pki"
)

// deployConfig is the node configuration file deploy/ ships (the one
// compose.yaml mounts); every fleet node starts from it.
func deployConfig(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "config", "node.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("deploy configuration: %v", err)
	}
	return path
}

// fleet is a deployment of several groups across Lab hosts, set up as an
// operator following the README would: a CA and one certificate per host
// made with `qledger ca` (the host's IP in its SANs, its ID drawn in its
// group), and each node started as `qledger node --config
// deploy/config/node.yaml` with the per-host values compose.yaml passes
// as QLEDGER_* variables given as the equivalent flags (data directory,
// advertised addresses, certificate, seeds, number of groups).
type fleet struct {
	*Cluster
	t      *testing.T
	groups int
	config string
	// groupOf and idOf are each node's group and certificate ID.
	groupOf map[*Node]int
	idOf    map[*Node]string
	// inPlace are the groups whose nodes run with
	// QLEDGER_LEAVE_ON_TERMINATE=false: SIGTERM stops them as members.
	inPlace map[int]bool
}

// newFleet makes a CA in dir/ca (or uses the one there) and admin and
// submitter certificates; nodes are added with add.
func newFleet(t *testing.T, lab *Lab, bin, dir string, groups int) *fleet {
	t.Helper()
	f := &fleet{Cluster: &Cluster{Lab: lab, bin: bin, dir: dir, caDir: filepath.Join(dir, "ca")}, t: t, groups: groups,
		config: deployConfig(t), groupOf: map[*Node]int{}, idOf: map[*Node]string{}}
	if _, err := os.Stat(filepath.Join(f.caDir, "ca.pem")); errors.Is(err, os.ErrNotExist) {
		f.cli("ca", "init", "--dir", f.caDir)
		for _, r := range []string{"submitter", "admin", "auditor"} {
			f.cli("ca", "issue", "--dir", f.caDir, "--role", r, "--name", r)
		}
	}
	pem, err := os.ReadFile(filepath.Join(f.caDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	f.Roots = newPool(pem)
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("node logs (%s):\n%s", dir, f.LogTail(30))
		}
	})
	return f
}

// cli runs the qledger binary and returns its output; failing fails t.
func (f *fleet) cli(args ...string) string {
	f.t.Helper()
	out, err := exec.Command(f.bin, args...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("qledger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cliUntil runs the qledger binary until it succeeds with output ok
// accepts, at most d (an election under load makes a group briefly
// answer no_leader), and returns that output; else it fails t with the
// last output.
func (f *fleet) cliUntil(d time.Duration, ok func(out string) bool, args ...string) string {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, err := exec.Command(f.bin, args...).CombinedOutput()
		if err == nil && ok(string(out)) {
			return string(out)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("qledger %s, for %v: %v\n%s", strings.Join(args, " "), d, err, out)
		}
		time.Sleep(time.Second)
	}
}

// anyOutput accepts any output of a command that succeeded.
func anyOutput(string) bool { return true }

// as are the CLI flags presenting role's certificate.
func (f *fleet) as(role string) []string {
	return []string{"--ca", filepath.Join(f.caDir, "ca.pem"), "--cert", filepath.Join(f.caDir, role+".pem"), "--cert-key", filepath.Join(f.caDir, role+"-key.pem")}
}

// addr is n's API address for the CLI.
func addr(n *Node) string { return "https://" + n.Host.IP + ":" + httpPort }

// issue makes h's node certificate: its IP in the SANs, its ID in group.
func (f *fleet) issue(h *Host, group int) string {
	f.cli("ca", "issue", "--dir", f.caDir, "--role", "node", "--name", h.Name, "--ip", h.IP,
		"--groups", strconv.Itoa(f.groups), "--group", strconv.Itoa(group))
	pemBytes, err := os.ReadFile(filepath.Join(f.caDir, h.Name+".pem"))
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := identityOf(pemBytes)
	if err != nil {
		f.t.Fatal(err)
	}
	return id.NodeID
}

// add issues h's certificate and starts its node in group, joining seeds
// (gossip addresses). It does not wait for the node.
func (f *fleet) add(h *Host, group int, seeds []string) *Node {
	f.t.Helper()
	id := f.issue(h, group)
	return f.start(h, group, id, seeds)
}

// start starts a node on h whose certificate is issued already.
func (f *fleet) start(h *Host, group int, id string, seeds []string) *Node {
	f.t.Helper()
	creds, err := pki.LoadCredentials(filepath.Join(f.caDir, "ca.pem"), filepath.Join(f.caDir, "submitter.pem"), filepath.Join(f.caDir, "submitter-key.pem"))
	if err != nil {
		f.t.Fatal(err)
	}
	n := &Node{Name: h.Name, Host: h, c: f.Cluster}
	if f.inPlace[group] {
		// The environment, not the flag: a release from before it
		// ignores the variable (and leaves) instead of refusing to start.
		n.env = []string{"QLEDGER_LEAVE_ON_TERMINATE=false"}
	}
	if n.API, err = client.NewTLS(addr(n), creds.ClientConfig(nil)); err != nil {
		f.t.Fatal(err)
	}
	ip := h.IP
	n.args = []string{"node", "--config", f.config,
		"--data", filepath.Join(f.dir, h.Name),
		"--groups", strconv.Itoa(f.groups),
		"--advertise", ip + ":" + raftPort, "--gossip-advertise", ip + ":" + gossipPort, "--http-advertise", "https://" + ip + ":" + httpPort,
		"--ca", filepath.Join(f.caDir, "ca.pem"), "--cert", filepath.Join(f.caDir, h.Name+".pem"), "--cert-key", filepath.Join(f.caDir, h.Name+"-key.pem"),
		"--gossip-key", gossipKey, "--join", strings.Join(seeds, ",")}
	if n.log, err = os.Create(filepath.Join(f.dir, h.Name+".log")); err != nil {
		f.t.Fatal(err)
	}
	f.Nodes = append(f.Nodes, n)
	f.groupOf[n], f.idOf[n] = group, id
	if err := n.Start(); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// gossipAddrs are the gossip addresses of hosts.
func gossipAddrs(hosts ...*Host) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.IP + ":" + gossipPort
	}
	return out
}

// healthy reports whether every running node answers and every group's
// leader counts voters healthy voters among its members, with no member
// it judges unhealthy and no state machine error.
func (f *fleet) healthy(ctx context.Context, voters int) error {
	for _, n := range f.Nodes {
		if !n.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := n.API.Cluster(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %v", n.Name, err)
		}
		if len(st.Groups) != f.groups {
			return fmt.Errorf("%s sees %d groups", n.Name, len(st.Groups))
		}
		for _, g := range st.Groups {
			if g.Error != "" || !g.HasLeader {
				return fmt.Errorf("%s: group %d: leader %v, error %q", n.Name, g.Group, g.HasLeader, g.Error)
			}
			if g.Group == f.groupOf[n] && g.State == "Leader" && (g.HealthyVoters != voters || g.Voters != voters) {
				return fmt.Errorf("group %d: %d healthy of %d voters, want %d", g.Group, g.HealthyVoters, g.Voters, voters)
			}
		}
	}
	return nil
}

// waitHealthy waits until healthy holds, at most d.
func (f *fleet) waitHealthy(ctx context.Context, voters int, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f.healthy(ctx, voters)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("fleet not healthy after %v: %v", d, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// member is m's entry in its group's status as the group's leader
// reports it, from any running node of the group.
func (f *fleet) member(ctx context.Context, m *Node) (client.Member, bool) {
	for _, n := range f.Nodes {
		if !n.Running() || f.groupOf[n] != f.groupOf[m] {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := n.API.Cluster(sctx)
		cancel()
		if err != nil {
			continue
		}
		for _, g := range st.Groups {
			if g.Group != f.groupOf[m] || g.State != "Leader" {
				continue
			}
			for _, mm := range g.Members {
				if mm.ID == f.idOf[m] {
					return mm, true
				}
			}
		}
	}
	return client.Member{}, false
}

// writer submits writes to its group through random running nodes of
// nodes until ctx is done, one every pace at most, each with its own
// idempotency key (also its payload), retrying one whose outcome it did
// not learn with the same key; every attempt goes into h.
func (f *fleet) writer(ctx context.Context, nodes []*Node, c, group int, prefix string, pace time.Duration, h *History, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(c)))
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := fmt.Sprintf("%s-g%d-w%d-%d", prefix, group, c, i)
		for try := 0; try < 50 && ctx.Err() == nil; try++ {
			n := nodes[rng.IntN(len(nodes))]
			if !n.Running() {
				continue
			}
			op := Op{Client: c, Kind: KindWrite, Node: n.Name, Key: key, Invoke: time.Now()}
			octx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, _, err := n.API.Submit(octx, []byte(key), client.SubmitOptions{IdempotencyKey: key, Group: &group})
			cancel()
			op.Complete, op.Outcome, op.Err = time.Now(), outcome(err), errText(err)
			if err == nil {
				op.TxID, op.Index, op.Height = r.ID, r.Index, r.Height
			}
			h.Add(op)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// writers runs perGroup writers per group, each writing every pace, until
// stop is called, which waits for them and returns each group's history.
func (f *fleet) writers(prefix string, perGroup int, pace time.Duration) (stop func() []*History) {
	ctx, cancel := context.WithCancel(context.Background())
	nodes := slices.Clone(f.Nodes) // nodes added later are not written to
	hs := make([]*History, f.groups)
	var wg sync.WaitGroup
	for g := range f.groups {
		hs[g] = &History{}
		for c := range perGroup {
			wg.Add(1)
			go func() { defer wg.Done(); f.writer(ctx, nodes, c, g, prefix, pace, hs[g], uint64(g)) }()
		}
	}
	return func() []*History {
		cancel()
		wg.Wait()
		return hs
	}
}

// checkGroups waits until every running node of each group serves the
// same head, verifies each chain, and checks each group's writes with
// CheckDurability: every acknowledged write in the log exactly once, at
// its receipt's index, served with an inclusion proof that verifies for
// the final head. It returns how many acknowledged writes it checked.
func (f *fleet) checkGroups(ctx context.Context, hs []*History) int {
	f.t.Helper()
	acked := 0
	for g := range f.groups {
		head := f.sameHead(ctx, g, 2*time.Minute)
		api := f.groupAPI(ctx, g)
		if _, err := api.VerifyGroupTo(ctx, g, head); err != nil {
			f.t.Fatalf("group %d: the chain does not verify: %v", g, err)
		}
		log := f.groupLog(ctx, api, g, head)
		var ops []Op
		if hs != nil {
			ops = hs[g].Ops()
		}
		// Every replica serves the final head: a stale read is as good
		// as a linearizable one here, and far cheaper.
		d := CheckDurability(ops, log, func(e Entry) error {
			r, err := api.Tx(ctx, e.TxID, Stale)
			if err != nil {
				return err
			}
			if r.Index != e.Index {
				return fmt.Errorf("served at index %d", r.Index)
			}
			return client.VerifyTxAgainstHead(r, head)
		})
		if !d.OK() {
			f.t.Fatalf("group %d: durability: %d lost, %d duplicated, %d misplaced, %d bad proofs:\n%s",
				g, d.Lost, d.Duplicated, d.Misplaced, d.BadProof, strings.Join(d.Problems, "\n"))
		}
		f.t.Logf("group %d: height %d, %d writes (%d acknowledged, %d unacknowledged present, %d absent): none lost or duplicated, every proof verifies",
			g, head.Height, d.Writes, d.Acked, d.UnknownPresent, d.UnknownAbsent)
		acked += d.Acked
	}
	return acked
}

// sameHead waits until every running node of group g serves one head.
func (f *fleet) sameHead(ctx context.Context, g int, d time.Duration) client.Head {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var first client.Head
		same, seen := true, 0
		for _, n := range f.Nodes {
			if !n.Running() || f.groupOf[n] != g {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			h, err := n.API.Head(sctx, g, Stale)
			cancel()
			if err != nil || (seen > 0 && (h.Height != first.Height || h.Hash != first.Hash)) {
				same = false
				break
			}
			if seen == 0 {
				first = h
			}
			seen++
		}
		if same && seen > 0 {
			return first
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("group %d: replicas serve different heads after %v", g, d)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// groupAPI is a client of a running node of group g (reads at
// linearizable level go on to g's leader).
func (f *fleet) groupAPI(ctx context.Context, g int) *client.Client {
	for _, n := range f.Nodes {
		if n.Running() && f.groupOf[n] == g {
			return n.API
		}
	}
	f.t.Fatalf("no running node of group %d", g)
	return nil
}

// groupLog reads group g's whole log up to head.
func (f *fleet) groupLog(ctx context.Context, api *client.Client, g int, head client.Head) Log {
	f.t.Helper()
	l := Log{Hashes: map[uint64]string{}, Size: head.LogSize}
	for from := uint64(1); from <= head.Height; {
		bs, err := api.Blocks(ctx, g, from, 200, Linearizable)
		if err != nil {
			f.t.Fatalf("group %d: blocks from %d: %v", g, from, err)
		}
		if len(bs) == 0 {
			f.t.Fatalf("group %d: no blocks from height %d, head %d", g, from, head.Height)
		}
		for _, b := range bs {
			l.Hashes[b.Height] = b.Hash
			base := b.LogSize - uint64(len(b.Txs))
			for i, tx := range b.Txs {
				l.Entries = append(l.Entries, Entry{Index: base + uint64(i), Height: b.Height, TxID: tx.ID, Key: tx.Tx.IdempotencyKey})
			}
			from = b.Height + 1
		}
	}
	return l
}

// newPool is a pool of the PEM certificates in pemBytes.
func newPool(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}

// identityOf is the identity in a PEM certificate (the first block).
func identityOf(pemBytes []byte) (pki.Identity, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return pki.Identity{}, errors.New("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return pki.Identity{}, err
	}
	return pki.IdentityOf(c)
}

// waitFor waits until cond holds, at most d, or fails t naming what.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
