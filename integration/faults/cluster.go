package faults

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"qledger/api/client"
	"qledger/pki"
)

// Ports every node listens on, each at its own host's address.
const (
	raftPort   = "7000"
	httpPort   = "8080"
	gossipPort = "7946"
)

// gossipKey encrypts the harness cluster's gossip.
const gossipKey = "cWxlZGdlci1mYXVsdHMtZ29zc2lwLWtleS0zMmJ5dGU="

// Cluster is one group of voters (or several, Options.Groups), each a
// `qledger node` process on its own Lab host, with mutual TLS from a CA
// made by `qledger ca`. A cluster of several groups has a view of each
// (Group): a Cluster holding that group's nodes only, on which the
// nemeses act and the checkers read the group's log.
type Cluster struct {
	Lab *Lab
	// Nodes are the voters: of every group, or of the view's group.
	Nodes []*Node
	// Spares are nodes on the lab's other hosts (Options.Standbys,
	// Options.Executors), certified but not started: the membership
	// nemeses start and stop them. Partitions and the node nemeses
	// act on Nodes only.
	Standbys, Executors []*Node
	// Roots holds the cluster CA, to check head signatures.
	Roots *x509.CertPool
	// Caller is how execution records name the invokers' identity
	// ("submitter:invoker"), which every node's Invoker client presents.
	Caller string
	// Logf, if set, is where nemeses say what they saw (a view logs
	// through its whole cluster's).
	Logf func(format string, args ...any)
	// ID is the group a view is of; 0 for a cluster of one group.
	ID int

	bin, dir, caDir string
	opts            Options
	// whole is the cluster a view belongs to (itself for the whole);
	// groups are the views of a cluster of several groups (nil for one).
	whole  *Cluster
	groups []*Cluster
}

// Options shape a cluster.
type Options struct {
	// DataSize, if set, puts every voter's data directory on a tmpfs of
	// its own of that many bytes, which the disk-full nemesis fills.
	DataSize int64
	// Standbys and Executors are how many of the lab's last hosts hold
	// spare nodes rather than voters: voter-role nodes that join as
	// standbys, and `--role executor` nodes. The first host's node
	// bootstraps the group; every other starts by joining it.
	Standbys, Executors int
	// TargetVoters, if set, is every node's --target-voters: how many
	// voters the group keeps (3 or 5; the node's default is 3).
	TargetVoters int
	// Groups is how many groups the cluster has (0 means 1). The lab's
	// hosts are split evenly among them, in order; each group's share
	// is laid out as one group's: voters first, then Standbys and
	// Executors spares of that group.
	Groups int
}

// Node is one `qledger node` process. Its data directory survives a
// restart.
type Node struct {
	Name string
	Host *Host
	// API is a submitter's HTTPS client of the node; Invoker another
	// submitter's (Cluster.Caller), which the workload's invokers use.
	API, Invoker *client.Client

	c *Cluster
	// group is the node's group.
	group int
	args  []string
	// env is added to the node process's environment.
	env []string
	log *os.File
	// data is the node's data directory; mounted when it is a tmpfs of
	// its own (Options.DataSize).
	data    string
	mounted bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Build compiles the qledger binary into dir.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "qledger")
	out, err := exec.Command("go", "build", "-o", bin, "qledger/cmd/qledger").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("faults: go build: %v\n%s", err, out)
	}
	return bin, nil
}

// StartCluster issues certificates and starts one node per lab host: the
// first bootstraps the group, the others join it by gossip.
func StartCluster(lab *Lab, bin, dir string) (*Cluster, error) {
	return StartClusterWith(lab, bin, dir, Options{})
}

// StartClusterWith is StartCluster with options. On error, Close undoes
// what was started.
func StartClusterWith(lab *Lab, bin, dir string, opts Options) (*Cluster, error) {
	c := &Cluster{Lab: lab, bin: bin, dir: dir, caDir: filepath.Join(dir, "ca"), opts: opts}
	c.whole = c
	groups := max(opts.Groups, 1)
	per := len(lab.Hosts) / groups
	voters := per - opts.Standbys - opts.Executors
	if len(lab.Hosts)%groups != 0 || voters < 1 {
		return c, fmt.Errorf("faults: %d hosts do not split into %d groups of voters besides %d standbys and %d executors each", len(lab.Hosts), groups, opts.Standbys, opts.Executors)
	}
	if err := c.issue(per); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(filepath.Join(c.caDir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	c.Roots = x509.NewCertPool()
	c.Roots.AppendCertsFromPEM(pem)
	c.Caller = pki.Identity{Role: pki.RoleSubmitter, Name: invokerName}.String()
	seed := lab.Hosts[0].IP + ":" + gossipPort
	for g := range groups {
		view := c // one group: the cluster is its own view
		if groups > 1 {
			view = &Cluster{Lab: lab, Roots: c.Roots, Caller: c.Caller, ID: g, bin: bin, dir: dir, caDir: c.caDir, opts: opts, whole: c}
			c.groups = append(c.groups, view)
		}
		for i, h := range lab.Hosts[g*per : (g+1)*per] {
			n, err := c.newNode(h, g)
			if err != nil {
				return c, err
			}
			if i >= voters {
				if err := view.spare(n, i < voters+opts.Standbys, seed); err != nil {
					return c, err
				}
				continue
			}
			if err := c.startVoter(n, i == 0, seed); err != nil {
				return c, err
			}
			if view != c {
				view.Nodes = append(view.Nodes, n)
			}
		}
		if view != c {
			c.Standbys, c.Executors = append(c.Standbys, view.Standbys...), append(c.Executors, view.Executors...)
		}
	}
	return c, nil
}

// newNode is the node on h, in group, with its clients; not started.
func (c *Cluster) newNode(h *Host, group int) (*Node, error) {
	creds, err := c.credentials("submitter")
	if err != nil {
		return nil, err
	}
	invoker, err := c.credentials(invokerName)
	if err != nil {
		return nil, err
	}
	n := &Node{Name: h.Name, Host: h, c: c, group: group, data: filepath.Join(c.dir, h.Name)}
	if n.API, err = client.NewTLS("https://"+h.IP+":"+httpPort, creds.ClientConfig(nil)); err != nil {
		return nil, err
	}
	if n.Invoker, err = client.NewTLS("https://"+h.IP+":"+httpPort, invoker.ClientConfig(nil)); err != nil {
		return nil, err
	}
	return n, nil
}

// startVoter starts n as a voter of its group: the group's first
// bootstraps it, every other joins it; all but the cluster's first node
// join gossip through seed (a group's first finds no member of its group
// there, so it bootstraps).
func (c *Cluster) startVoter(n *Node, first bool, seed string) error {
	c.Nodes = append(c.Nodes, n)
	if c.opts.DataSize > 0 {
		if err := n.mountData(c.Lab.prefix, c.opts.DataSize); err != nil {
			return err
		}
	}
	n.args = c.nodeArgs(n)
	if first {
		n.args = append(n.args, "--bootstrap")
	}
	if n.Host.IP+":"+gossipPort != seed {
		n.args = append(n.args, "--join", seed)
	}
	var err error
	if n.log, err = os.Create(filepath.Join(c.dir, n.Name+".log")); err != nil {
		return err
	}
	return n.Start()
}

// spare prepares n, not started: a standby (a voter-role node joining
// the group) or an executor.
func (c *Cluster) spare(n *Node, standby bool, seed string) error {
	n.args = c.nodeArgs(n)
	n.args = append(n.args, "--join", seed)
	if standby {
		c.Standbys = append(c.Standbys, n)
	} else {
		n.args = append(n.args, "--role", "executor")
		c.Executors = append(c.Executors, n)
	}
	var err error
	n.log, err = os.Create(filepath.Join(c.dir, n.Name+".log"))
	return err
}

// nodeArgs are the `qledger node` flags every node of c runs with.
func (c *Cluster) nodeArgs(n *Node) []string {
	h := n.Host
	args := []string{"node", "--data", n.data,
		"--bind", h.IP + ":" + raftPort, "--http", h.IP + ":" + httpPort, "--gossip-bind", h.IP + ":" + gossipPort,
		"--gossip-key", gossipKey, "--log-level", "info", "--groups", strconv.Itoa(max(c.opts.Groups, 1)),
		"--ca", filepath.Join(c.caDir, "ca.pem"), "--cert", filepath.Join(c.caDir, h.Name+".pem"), "--cert-key", filepath.Join(c.caDir, h.Name+"-key.pem")}
	if c.opts.TargetVoters > 0 {
		args = append(args, "--target-voters", strconv.Itoa(c.opts.TargetVoters))
	}
	return args
}

// issue makes the CA and the certificates with the qledger CLI, as an
// operator would: each node's ID drawn in its group, per hosts to a group.
func (c *Cluster) issue(per int) error {
	cmds := [][]string{{"ca", "init", "--dir", c.caDir}}
	groups := strconv.Itoa(max(c.opts.Groups, 1))
	for i, h := range c.Lab.Hosts {
		cmds = append(cmds, []string{"ca", "issue", "--dir", c.caDir, "--role", "node", "--name", h.Name, "--groups", groups, "--group", strconv.Itoa(i / per)})
	}
	cmds = append(cmds, []string{"ca", "issue", "--dir", c.caDir, "--role", "submitter", "--name", "submitter"},
		[]string{"ca", "issue", "--dir", c.caDir, "--role", "submitter", "--name", invokerName},
		[]string{"ca", "issue", "--dir", c.caDir, "--role", "admin", "--name", "admin"})
	for _, args := range cmds {
		if out, err := exec.Command(c.bin, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("faults: qledger %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// logf logs through the whole cluster's Logf, if set.
func (c *Cluster) logf(format string, args ...any) {
	if w := c.whole; w != nil && w.Logf != nil {
		w.Logf(format, args...)
	} else if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// invokerName names the certificate the workload's invokers present.
const invokerName = "invoker"

// credentials loads the certificate issue made for name.
func (c *Cluster) credentials(name string) (*pki.Credentials, error) {
	return pki.LoadCredentials(filepath.Join(c.caDir, "ca.pem"), filepath.Join(c.caDir, name+".pem"), filepath.Join(c.caDir, name+"-key.pem"))
}

// Deploy deploys a function as an admin through the leader, retrying
// until it is deployed or d passes.
func (c *Cluster) Deploy(ctx context.Context, req client.DeployRequest, d time.Duration) error {
	creds, err := c.credentials("admin")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	for {
		ld, err := c.Leader(ctx)
		if err == nil {
			var admin *client.Client
			if admin, err = client.NewTLS(ld.API.Base(), creds.ClientConfig(nil)); err == nil {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err = admin.Deploy(dctx, req)
				cancel()
				if err == nil || c.deployed(ctx, admin, req) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("faults: deploy %s: %w", req.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// deployed reports whether req's version of its function is deployed: a
// deploy whose answer was lost may have committed.
func (c *Cluster) deployed(ctx context.Context, admin *client.Client, req client.DeployRequest) bool {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f, err := admin.Function(fctx, req.Name)
	return err == nil && f.Version == req.Version
}

// Close kills every node, closes their logs and unmounts their data
// directories.
func (c *Cluster) Close() {
	for _, n := range c.all() {
		n.Kill()
		if n.log != nil {
			n.log.Close()
		}
		n.unmountData()
	}
}

// KeepLogs copies every node's whole log into a new directory under the
// system's temporary directory (the test's own goes when it ends) and
// returns its path.
func (c *Cluster) KeepLogs() (string, error) {
	dir, err := os.MkdirTemp("", "qledger-faults-logs-*")
	if err != nil {
		return "", err
	}
	for _, n := range c.all() {
		if n.log == nil {
			continue
		}
		data, err := os.ReadFile(n.log.Name())
		if err != nil {
			return dir, err
		}
		if err := os.WriteFile(filepath.Join(dir, n.Name+".log"), data, 0o644); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// LogTail is the end of every node's log, for a failure report.
func (c *Cluster) LogTail(lines int) string {
	var b strings.Builder
	for _, n := range c.all() {
		if n.log == nil {
			continue
		}
		data, _ := os.ReadFile(n.log.Name())
		l := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(l) > lines {
			l = l[len(l)-lines:]
		}
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", n.Name, n.Host.IP, strings.Join(l, "\n"))
	}
	return b.String()
}

// all is every node of c: voters, standbys and executors.
func (c *Cluster) all() []*Node {
	return append(append(append([]*Node(nil), c.Nodes...), c.Standbys...), c.Executors...)
}

// Start starts the node's process inside its host's namespace.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("faults: node %s is running", n.Name)
	}
	cmd := n.Host.Exec(n.c.bin, n.args...)
	if len(n.env) > 0 {
		cmd.Env = append(os.Environ(), n.env...)
	}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	// A test binary killed before its cleanup takes its nodes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("faults: start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// Signal sends sig to the node's process (`ip netns exec` execs it, so
// the process is the node itself).
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("faults: node %s is not running", n.Name)
	}
	return n.cmd.Process.Signal(sig)
}

// Kill SIGKILLs the node's process (resuming it first if it is stopped)
// and waits for it to exit. A node that is not running is left alone.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	<-n.done
	n.cmd = nil
}

// ErrNotExited: a node did not exit within the time Stop gave it after
// its signal, and was killed.
var ErrNotExited = errors.New("faults: node did not exit in time; killed")

// Stop sends the node's process sig (SIGTERM: it leaves the cluster
// gracefully, then exits) and waits for it to exit, at most d; after d
// it is killed (ErrNotExited). A node that is not running is left alone.
func (n *Node) Stop(sig syscall.Signal, d time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	var err error
	if err = n.cmd.Process.Signal(sig); err == nil {
		select {
		case <-n.done:
		case <-time.After(d):
			err = fmt.Errorf("%w: %s, %v after %v (its goroutines are dumped in its log)", ErrNotExited, n.Name, d, sig)
			// SIGQUIT: the Go runtime writes every goroutine's stack to
			// the log and exits, which shows what held it.
			_ = n.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-n.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	<-n.done
	n.cmd = nil
	return err
}

// Running reports whether the node's process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Status is the node's own view of its group, or an error.
func (n *Node) Status(ctx context.Context) (client.GroupStatus, error) {
	st, err := n.API.Cluster(ctx)
	if err != nil {
		return client.GroupStatus{}, err
	}
	for _, g := range st.Groups {
		if g.Group == n.group {
			return g, nil
		}
	}
	return client.GroupStatus{}, fmt.Errorf("faults: %s reports no group %d", n.Name, n.group)
}

// Groups are the views of c's groups: c itself if it has one.
func (c *Cluster) Groups() []*Cluster {
	if len(c.groups) == 0 {
		return []*Cluster{c}
	}
	return c.groups
}

// Leader is the node of c's group that reports itself leader at the
// highest term; of a cluster of several groups, group 0's.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	if len(c.groups) > 0 {
		return c.groups[0].Leader(ctx)
	}
	var (
		best *Node
		term uint64
	)
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := n.Status(sctx)
		cancel()
		if err == nil && st.State == "Leader" && (best == nil || st.Term > term) {
			best, term = n, st.Term
		}
	}
	if best == nil {
		return nil, ErrNoLeader
	}
	return best, nil
}

// Healthy reports whether, in each group, every node runs, answers,
// reports no error (a stopped state machine), agrees on one leader and
// the leader counts every node a healthy voter.
func (c *Cluster) Healthy(ctx context.Context) bool {
	return c.unhealthy(ctx) == ""
}

// unhealthy says why the cluster is not Healthy, or "".
func (c *Cluster) unhealthy(ctx context.Context) string {
	if len(c.groups) > 0 {
		for _, g := range c.groups {
			if why := g.unhealthy(ctx); why != "" {
				return fmt.Sprintf("group %d: %s", g.ID, why)
			}
		}
		return ""
	}
	leaders := map[string]bool{}
	var leader client.GroupStatus
	for _, n := range c.Nodes {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := n.Status(sctx)
		cancel()
		switch {
		case err != nil:
			return fmt.Sprintf("%s: %v", n.Name, err)
		case !st.HasLeader:
			return n.Name + " knows no leader"
		case st.Error != "":
			return fmt.Sprintf("%s: %s", n.Name, st.Error)
		}
		leaders[st.Leader] = true
		if st.State == "Leader" {
			leader = st
		}
	}
	switch {
	case len(leaders) != 1:
		return fmt.Sprintf("the nodes name %d leaders", len(leaders))
	case leader.HealthyVoters != len(c.Nodes):
		var why []string
		for _, m := range leader.Members {
			if !m.Healthy {
				why = append(why, m.ID[:min(12, len(m.ID))]+": "+m.Reason)
			}
		}
		return fmt.Sprintf("the leader counts %d healthy voters of %d %v", leader.HealthyVoters, len(c.Nodes), why)
	}
	return ""
}

// WaitHealthy waits until Healthy holds, at most d.
func (c *Cluster) WaitHealthy(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		why := c.unhealthy(ctx)
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("faults: cluster not healthy after %v: %s", d, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mountData mounts a tmpfs of size bytes on the node's data directory, in
// the root mount namespace, before the node starts: `ip netns exec` gives
// the node a copy of it, the same file system. Its source is named after
// the lab, so CleanStale finds it after a killed run.
func (n *Node) mountData(prefix string, size int64) error {
	if err := os.MkdirAll(n.data, 0o700); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), prefix+"-"+n.Name+"-data", n.data).CombinedOutput()
	if err != nil {
		return fmt.Errorf("faults: mount a tmpfs on %s: %v: %s", n.data, err, strings.TrimSpace(string(out)))
	}
	n.mounted = true
	return nil
}

func (n *Node) unmountData() {
	if n.mounted {
		if err := exec.Command("umount", n.data).Run(); err == nil {
			n.mounted = false
		}
	}
}
