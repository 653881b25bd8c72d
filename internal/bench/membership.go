package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"qledger/api/client"
	"qledger/cluster"
)

// Polling and patience of the membership benchmark.
const (
	memberPoll     = 10 * time.Millisecond
	memberRequest  = time.Second      // one GET /v1/cluster
	memberDeadline = 60 * time.Second // one awaited state
	memberExit     = 20 * time.Second // a signalled node to exit
)

// MembershipConfig is one run of Membership.
type MembershipConfig struct {
	// Binary is the qledger executable run as `node` processes.
	Binary string
	// Rounds is the number of measured rounds (a join and a failover
	// each); at least 1.
	Rounds int
	// LogLevel of the node processes (their logs are shown on failure).
	LogLevel string
	// Markdown prints a Markdown table.
	Markdown bool
}

// Membership measures membership changes with real `qledger node`
// processes of cfg.Binary on loopback (--loopback-timing): the time from
// a voter-role node's process start to its being a non-voter of the
// leader's configuration and to its promotion to voter, and the time from
// a voter's SIGKILL to a stable standby's promotion and to the dead
// voter's removal. Each round first lets a voter leave gracefully
// (SIGTERM), so that the new node is promoted into a group below its
// target of 3 voters. Every child process is killed, and every temporary
// directory removed, before it returns, also on error or interrupt.
func Membership(cfg MembershipConfig, out, log io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newMemberBench(log, cfg.Binary, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer b.close()
	timing := cluster.DefaultConfig()
	timing.LoopbackTiming()
	fmt.Fprintf(out, "qledger bench membership: %d rounds, `qledger node` processes on loopback, 1 group of 3 voters (target 3); "+
		"timing profile --loopback-timing (LoopbackTiming: %s stabilization, %s grace for failed nodes, %s reconcile interval); "+
		"GET /v1/cluster polled on the leader every %s; GOMAXPROCS %d, %d CPUs\n",
		cfg.Rounds, timing.StabilizationTime, timing.DeadServerGrace, timing.ReconcileInterval, memberPoll, runtime.GOMAXPROCS(0), runtime.NumCPU())
	var toNonVoter, toVoter, toPromotion, toRemoval []time.Duration
	err = func() error {
		if err := b.bootstrap(ctx); err != nil {
			return err
		}
		for r := 1; r <= cfg.Rounds; r++ {
			nv, v, err := b.join(ctx, r)
			if err != nil {
				return err
			}
			p, rm, err := b.failover(ctx, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "    round %d: non-voter %s ms, voter %s ms; standby promoted %s ms, dead voter removed %s ms\n", r, ms(nv), ms(v), ms(p), ms(rm))
			toNonVoter, toVoter = append(toNonVoter, nv), append(toVoter, v)
			toPromotion, toRemoval = append(toPromotion, p), append(toRemoval, rm)
		}
		return nil
	}()
	if err != nil {
		if ctx.Err() == nil {
			b.dumpLogs()
		}
		return err
	}
	tab := newTable(out, cfg.Markdown, "measurement", "mean ms", "max ms", "includes")
	add := func(name string, ds []time.Duration, note string) {
		mean, most := meanMax(ds)
		tab.rows = append(tab.rows, []string{name, ms(mean), ms(most), note})
		if !cfg.Markdown {
			fmt.Fprintf(out, "  %-50s mean %9s ms  max %9s ms  %s\n", name, ms(mean), ms(most), note)
		}
	}
	add("process start → non-voter of its group", toNonVoter, "—")
	add("process start → promoted to voter", toVoter, fmt.Sprintf("%s stabilization", timing.StabilizationTime))
	add("voter SIGKILLed → stable standby promoted", toPromotion, "—")
	add("voter SIGKILLed → removed from the configuration", toRemoval, fmt.Sprintf("%s grace", timing.DeadServerGrace))
	tab.print()
	return nil
}

func meanMax(ds []time.Duration) (mean, most time.Duration) {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds)), slices.Max(ds)
}

// memberBench is the set of node processes of one benchmark run. It is
// used from one goroutine.
type memberBench struct {
	log                       io.Writer // where failures show node logs
	self, root, key, logLevel string
	procs                     []*nodeProc
	leader                    *nodeProc // the last node seen leading
	ports                     map[string]bool
	// timing is the node processes' raft timing flag: --loopback-timing,
	// or none for the default (LAN) profile.
	timing []string
}

func newMemberBench(log io.Writer, self, logLevel string) (*memberBench, error) {
	root, err := os.MkdirTemp("", "qledger-bench-membership-")
	if err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return &memberBench{log: log, self: self, root: root, key: base64.StdEncoding.EncodeToString(k), logLevel: logLevel, ports: map[string]bool{}, timing: []string{"--loopback-timing"}}, nil
}

// close kills every node process still running and removes the run's
// directory.
func (b *memberBench) close() {
	for _, p := range b.procs {
		p.kill()
	}
	for _, p := range b.procs {
		p.logFile.Close()
	}
	os.RemoveAll(b.root)
}

// dumpLogs prints the end of every node's log to stderr.
func (b *memberBench) dumpLogs() {
	for _, p := range b.procs {
		fmt.Fprintf(b.log, "--- log of node %s (raft %s, exited: %v), last lines:\n%s\n", p.name, p.raft, p.exited(), p.logTail(15))
	}
}

// nodeProc is one `qledger node` child process.
type nodeProc struct {
	name, raft, http, gossip string
	api                      *client.Client
	cmd                      *exec.Cmd
	logFile                  *os.File
	started                  time.Time     // just before the process was started
	done                     chan struct{} // closed once the process is reaped
	signalled                bool          // an exit is expected
}

func (p *nodeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends s and waits for the process to exit.
func (p *nodeProc) signal(s os.Signal) error {
	p.signalled = true
	if err := p.cmd.Process.Signal(s); err != nil && !p.exited() {
		return fmt.Errorf("bench: signal node %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(memberExit):
		return fmt.Errorf("bench: node %s did not exit %s after %v", p.name, memberExit, s)
	}
}

func (p *nodeProc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process exits only once resumed
		_ = p.signal(os.Kill)
	}
}

func (p *nodeProc) logTail(n int) string {
	data, _ := os.ReadFile(p.logFile.Name())
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// freeAddr returns a loopback address whose port is free for TCP and UDP
// (gossip uses both) and not handed out before in this run. The port is
// drawn from [benchPorts, benchPorts+benchPortsSpan), below Linux's
// ephemeral range (32768 and up): a port from that range, free when
// drawn, can be taken by another process's outgoing connection or port-0
// listener before the node it was meant for binds it ("address already
// in use", seen when the integration tests ran beside this benchmark).
func (b *memberBench) freeAddr() (string, error) {
	for range 2000 {
		addr := fmt.Sprintf("127.0.0.1:%d", benchPorts+mrand.IntN(benchPortsSpan))
		if b.ports[addr] {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		b.ports[addr] = true
		return addr, nil
	}
	return "", errors.New("bench: no free loopback port between 10000 and 20000")
}

// benchPorts and benchPortsSpan bound the ports freeAddr draws; the
// integration tests draw theirs from 20000 up, so the two never meet.
const (
	benchPorts     = 10000
	benchPortsSpan = 10000
)

// start starts a node process with its own data directory and log file.
func (b *memberBench) start(name string, extra ...string) (*nodeProc, error) {
	p := &nodeProc{name: name, done: make(chan struct{})}
	for _, a := range []*string{&p.raft, &p.http, &p.gossip} {
		var err error
		if *a, err = b.freeAddr(); err != nil {
			return nil, err
		}
	}
	p.api, _ = client.New("http://"+p.http, nil)
	var err error
	if p.logFile, err = os.Create(filepath.Join(b.root, name+".log")); err != nil {
		return nil, err
	}
	args := append([]string{"node", "--data", filepath.Join(b.root, name), "--bind", p.raft, "--http", p.http,
		"--gossip-bind", p.gossip, "--gossip-key", b.key, "--log-level", b.logLevel}, append(b.timing, extra...)...)
	p.cmd = exec.Command(b.self, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("bench: start node %s: %w", name, err)
	}
	b.procs = append(b.procs, p)
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// seeds are the gossip addresses of the running nodes.
func (b *memberBench) seeds() string {
	var s []string
	for _, p := range b.procs {
		if !p.exited() {
			s = append(s, p.gossip)
		}
	}
	return strings.Join(s, ",")
}

// group returns group 0's status as its leader reports it: the leader's
// configuration, with its health judgements.
func (b *memberBench) group(ctx context.Context) (client.GroupStatus, error) {
	ask := func(p *nodeProc) (client.GroupStatus, bool) {
		if p == nil || p.exited() {
			return client.GroupStatus{}, false
		}
		rctx, cancel := context.WithTimeout(ctx, memberRequest)
		defer cancel()
		st, err := p.api.Cluster(rctx)
		if err != nil || len(st.Groups) == 0 {
			return client.GroupStatus{}, false
		}
		return st.Groups[0], true
	}
	if st, ok := ask(b.leader); ok && st.State == "Leader" {
		return st, nil
	}
	for _, p := range b.procs {
		st, ok := ask(p)
		if !ok {
			continue
		}
		if st.State != "Leader" {
			if p = b.byID(st, st.Leader); p == nil {
				continue
			}
			if st, ok = ask(p); !ok || st.State != "Leader" {
				continue
			}
		}
		b.leader = p
		return st, nil
	}
	return client.GroupStatus{}, errors.New("bench: no node answers as group 0's leader")
}

// byID is the process of the member with the given ID in st.
func (b *memberBench) byID(st client.GroupStatus, id string) *nodeProc {
	for _, m := range st.Members {
		if m.ID == id && id != "" {
			return b.byRaft(m.Addr)
		}
	}
	return nil
}

func (b *memberBench) byRaft(addr string) *nodeProc {
	for _, p := range b.procs {
		if p.raft == addr {
			return p
		}
	}
	return nil
}

// member is p's entry in st's configuration (Suffrage "voter" or
// "nonvoter"), if it has one.
func member(st client.GroupStatus, p *nodeProc) (client.Member, bool) {
	for _, m := range st.Members {
		if m.Addr == p.raft && m.Suffrage != "none" {
			return m, true
		}
	}
	return client.Member{}, false
}

// waitFor polls the leader every memberPoll until cond holds and returns
// when it was seen. It fails when a node exits unasked, on interrupt, and
// after memberDeadline.
func (b *memberBench) waitFor(ctx context.Context, what string, cond func(client.GroupStatus) bool) (time.Time, error) {
	deadline := time.Now().Add(memberDeadline)
	var last client.GroupStatus
	for {
		st, err := b.group(ctx)
		seen := time.Now()
		if err == nil {
			if cond(st) {
				return seen, nil
			}
			last = st
		}
		for _, p := range b.procs {
			if p.exited() && !p.signalled {
				return time.Time{}, fmt.Errorf("bench: waiting for %s: node %s exited: %v", what, p.name, p.cmd.ProcessState)
			}
		}
		if seen.After(deadline) {
			return time.Time{}, fmt.Errorf("bench: %s not seen in %s; last seen: %s", what, memberDeadline, describe(last))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("bench: waiting for %s: %w", what, ctx.Err())
		case <-time.After(memberPoll):
		}
	}
}

func describe(st client.GroupStatus) string {
	var s []string
	for _, m := range st.Members {
		s = append(s, fmt.Sprintf("%s %s healthy=%v stable=%v gossip=%s", m.Addr, m.Suffrage, m.Healthy, m.Stable, m.Gossip))
	}
	return fmt.Sprintf("%d voters, %d non-voters [%s]", st.Voters, st.NonVoters, strings.Join(s, "; "))
}

// settled holds when the configuration is exactly n healthy voters, with
// no non-voter.
func settled(n int) func(client.GroupStatus) bool {
	return func(st client.GroupStatus) bool {
		return st.Voters == n && st.NonVoters == 0 && st.HealthyVoters == n
	}
}

// bootstrap starts one node with --bootstrap and two more that join it,
// and waits for a group of three healthy voters.
func (b *memberBench) bootstrap(ctx context.Context) error {
	a, err := b.start("a", "--bootstrap")
	if err != nil {
		return err
	}
	b.leader = a
	if _, err := b.waitFor(ctx, "the bootstrap node to lead", func(client.GroupStatus) bool { return true }); err != nil {
		return err
	}
	for _, name := range []string{"b", "c"} {
		if _, err := b.start(name, "--join", a.gossip); err != nil {
			return err
		}
	}
	_, err = b.waitFor(ctx, "three healthy voters", settled(3))
	return err
}

// voterToStop picks the longest-running voter that does not lead.
func (b *memberBench) voterToStop(ctx context.Context) (*nodeProc, error) {
	st, err := b.group(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range b.procs {
		if m, ok := member(st, p); ok && m.Suffrage == "voter" && !m.Leader && !p.exited() {
			return p, nil
		}
	}
	return nil, errors.New("bench: no voter besides the leader")
}

// join lets a voter leave gracefully, then starts a voter-role node and
// measures from its process start until it is a non-voter of the leader's
// configuration and until it is a voter.
func (b *memberBench) join(ctx context.Context, round int) (toNonVoter, toVoter time.Duration, err error) {
	leaver, err := b.voterToStop(ctx)
	if err != nil {
		return 0, 0, err
	}
	if err := leaver.signal(syscall.SIGTERM); err != nil {
		return 0, 0, err
	}
	if _, err := b.waitFor(ctx, "a graceful leave to two voters", settled(2)); err != nil {
		return 0, 0, err
	}
	n, err := b.start(fmt.Sprintf("join%d", round), "--join", b.seeds())
	if err != nil {
		return 0, 0, err
	}
	at, err := b.waitFor(ctx, "the new node as a non-voter", func(st client.GroupStatus) bool {
		_, ok := member(st, n)
		return ok
	})
	if err != nil {
		return 0, 0, err
	}
	toNonVoter = at.Sub(n.started)
	at, err = b.waitFor(ctx, "the new node as a voter", func(st client.GroupStatus) bool {
		m, ok := member(st, n)
		return ok && m.Suffrage == "voter"
	})
	if err != nil {
		return 0, 0, err
	}
	toVoter = at.Sub(n.started)
	_, err = b.waitFor(ctx, "three healthy voters", settled(3))
	return toNonVoter, toVoter, err
}

// failover starts a standby, waits until the leader judges it stable,
// SIGKILLs a voter that does not lead and measures until the standby is a
// voter and until the dead voter has left the configuration.
func (b *memberBench) failover(ctx context.Context, round int) (toPromotion, toRemoval time.Duration, err error) {
	s, err := b.start(fmt.Sprintf("standby%d", round), "--join", b.seeds())
	if err != nil {
		return 0, 0, err
	}
	if _, err := b.waitFor(ctx, "a stable standby", func(st client.GroupStatus) bool {
		m, ok := member(st, s)
		return ok && m.Suffrage == "nonvoter" && m.Stable && m.Healthy && st.HealthyVoters == 3
	}); err != nil {
		return 0, 0, err
	}
	victim, err := b.voterToStop(ctx)
	if err != nil {
		return 0, 0, err
	}
	killed := time.Now()
	if err := victim.signal(os.Kill); err != nil {
		return 0, 0, err
	}
	at, err := b.waitFor(ctx, "the standby promoted", func(st client.GroupStatus) bool {
		m, ok := member(st, s)
		return ok && m.Suffrage == "voter"
	})
	if err != nil {
		return 0, 0, err
	}
	toPromotion = at.Sub(killed)
	at, err = b.waitFor(ctx, "the dead voter removed", func(st client.GroupStatus) bool {
		_, ok := member(st, victim)
		return !ok
	})
	if err != nil {
		return 0, 0, err
	}
	toRemoval = at.Sub(killed)
	_, err = b.waitFor(ctx, "three healthy voters", settled(3))
	return toPromotion, toRemoval, err
}
