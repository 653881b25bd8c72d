package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/api/contract"
	"qledger/pki"
)

// binary is the qledger binary built once for the multi-process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qledger-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "qledger")
	cmd := exec.Command("go", append(append([]string{"build"}, contractTags...), "-o", binary, "qledger/cmd/qledger")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build qledger:", err)
		os.Exit(1)
	}
	code := contract.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address whose port, TCP and UDP, is free
// now (see lowPorts).
func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 2000 {
		port := lowPorts + rand.IntN(lowPortsSpan)
		if portsGiven[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr) // gossip listens on both
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		portsGiven[port] = true
		return addr
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

// freePort draws ports from [lowPorts, lowPorts+lowPortsSpan), below
// Linux's ephemeral range (32768 and up), and never the same port twice
// in one test binary: a port taken from the ephemeral range, free when
// drawn, could be bound by an outgoing connection of another node before
// the node it was meant for listened on it ("address already in use",
// seen in TestCrashAtEachRestoreStep).
const (
	lowPorts     = 20000
	lowPortsSpan = 12000
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// proc is one `qledger node` process.
type proc struct {
	t          *testing.T
	dir        string
	raft, http string
	gossip     string
	// bin is the executable the next start runs (empty: binary).
	bin  string
	args []string
	env  []string // added to the environment of the next start
	cmd  *exec.Cmd
	done chan struct{} // closed once the current process has exited
	log  *syncBuffer
	// tlsDir, if set, holds ca.pem and a certificate per role; client()
	// then speaks HTTPS as a submitter.
	tlsDir string
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gossipKey is the cluster's gossip key in the multi-process tests.
const gossipKey = "cWxlZGdlci10ZXN0LWdvc3NpcC1rZXktMzItYnl0ZXM="

func startProc(t *testing.T, dir string, raft, http string, extra ...string) *proc {
	p := &proc{t: t, dir: dir, raft: raft, http: http, gossip: freePort(t)}
	p.args = append([]string{"node", "--data", dir, "--bind", raft, "--http", http, "--gossip-bind", p.gossip, "--gossip-key", gossipKey, "--loopback-timing", "--log-level", "info"}, extra...)
	p.start()
	return p
}

func (p *proc) start() {
	p.log = &syncBuffer{}
	bin := binary
	if p.bin != "" {
		bin = p.bin
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	// One goroutine waits for the process; everyone else watches done
	// (reading cmd.ProcessState while Wait sets it is a data race).
	cmd, done := p.cmd, make(chan struct{})
	p.done = done
	go func() { cmd.Wait(); close(done) }()
	p.t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
		if p.t.Failed() {
			p.t.Logf("log of node %s:\n%s", p.raft, p.log.String())
		}
	})
}

// running reports whether p's current process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(s syscall.Signal) {
	p.cmd.Process.Signal(s)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("node %s did not exit after %v", p.raft, s)
	}
}

func (p *proc) client() *client.Client {
	if p.tlsDir != "" {
		return p.as(pki.RoleSubmitter)
	}
	c, _ := client.New("http://"+p.http, nil)
	return c
}

// as is an HTTPS client of p presenting tlsDir's certificate for role, or
// nil while the files are not there yet.
func (p *proc) as(role pki.Role) *client.Client {
	creds, err := pki.LoadCredentials(filepath.Join(p.tlsDir, "ca.pem"), filepath.Join(p.tlsDir, string(role)+".pem"), filepath.Join(p.tlsDir, string(role)+"-key.pem"))
	if err != nil {
		return nil
	}
	c, _ := client.NewTLS("https://"+p.http, creds.ClientConfig(nil))
	return c
}

// tlsArgs are the CLI flags presenting dir's certificate name.
func tlsArgs(dir, name string) []string {
	return []string{"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, name+".pem"), "--cert-key", filepath.Join(dir, name+"-key.pem")}
}

// ready reports whether c answers /readyz; a nil client is not ready.
func ready(ctx context.Context, c *client.Client) bool { return c != nil && c.Ready(ctx) == nil }

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// voters returns the voters and members of group 0 as c's node sees it.
func members(ctx context.Context, c *client.Client) (voters, all int, leader bool) {
	st, err := c.Cluster(ctx)
	if err != nil || len(st.Groups) == 0 {
		return 0, 0, false
	}
	for _, m := range st.Groups[0].Members {
		if m.Suffrage != "none" {
			all++
		}
		if m.Suffrage == "voter" {
			voters++
		}
	}
	return voters, all, st.Groups[0].HasLeader
}

func TestMultiProcessJoinKillRestart(t *testing.T) {
	root := t.TempDir()
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), "--bootstrap")
	ctx := context.Background()
	waitFor(t, "node a ready", 20*time.Second, func() bool { return a.client().Ready(ctx) == nil })
	// b and c need one gossip seed; a's reconciler adds them as
	// non-voters and promotes them once they are stable.
	b := startProc(t, filepath.Join(root, "b"), freePort(t), freePort(t), "--join", a.gossip)
	c := startProc(t, filepath.Join(root, "c"), freePort(t), freePort(t), "--join", "127.0.0.1:1,"+a.gossip) // a dead seed first
	waitFor(t, "three voters", 30*time.Second, func() bool {
		v, all, leader := members(ctx, c.client())
		return v == 3 && all == 3 && leader
	})

	// Writes through the CLI and the client, from a follower's API.
	out, err := run(t, "tx", "submit", "--addr", "http://"+c.http, "--json", "--key", "k1", "hello from the CLI")
	if err != nil {
		t.Fatalf("tx submit: %v\n%s", err, out)
	}
	var r client.Receipt
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("tx submit --json output %q: %v", out, err)
	}
	if out, err := run(t, "tx", "get", "--addr", "http://"+b.http, r.ID); err != nil || !strings.Contains(out, "verified here") {
		t.Fatalf("tx get: %v\n%s", err, out)
	}
	for i := 0; i < 30; i++ {
		if _, _, err := c.client().Submit(ctx, []byte(fmt.Sprint("before kill ", i)), client.SubmitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Prometheus metrics include raft's own and the ledger's.
	resp, err := http.Get("http://" + c.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"qledger_raft_", "qledger_submit_seconds"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Fatalf("/metrics lacks %s", m)
		}
	}

	// SIGKILL a node, keep writing, restart it: it catches up.
	b.signal(syscall.SIGKILL)
	for i := 0; i < 30; i++ {
		if _, _, err := c.client().Submit(ctx, []byte(fmt.Sprint("while down ", i)), client.SubmitOptions{}); err != nil {
			t.Fatalf("submit with one node down: %v", err)
		}
	}
	b.start()
	want, err := c.client().Head(ctx, 0, "linearizable")
	if err != nil || want.LogSize != 61 {
		t.Fatalf("head %+v %v", want, err)
	}
	waitFor(t, "restarted node to catch up", 20*time.Second, func() bool {
		h, err := b.client().Head(ctx, 0, "stale")
		return err == nil && h.Hash == want.Hash
	})

	// SIGTERM is a graceful leave: c leaves its group at once.
	c.signal(syscall.SIGTERM)
	waitFor(t, "c to leave the configuration", 10*time.Second, func() bool {
		v, all, _ := members(ctx, a.client())
		return v == 2 && all == 2
	})
	if _, _, err := a.client().Submit(ctx, []byte("after leave"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	// A new voter-role node is promoted back to three voters.
	d := startProc(t, filepath.Join(root, "d"), freePort(t), freePort(t), "--join", b.gossip)
	waitFor(t, "d promoted", 30*time.Second, func() bool {
		v, all, _ := members(ctx, a.client())
		return v == 3 && all == 3
	})
	// A failed node is removed by force before its grace period ends.
	st, _ := a.client().Cluster(ctx)
	var dID string
	for _, m := range st.Groups[0].Members {
		if m.Addr == d.raft {
			dID = m.ID
		}
	}
	d.signal(syscall.SIGKILL)
	if out, err := run(t, "cluster", "remove", "--addr", "http://"+a.http, dID); err != nil {
		t.Fatalf("cluster remove: %v\n%s", err, out)
	}
	if v, all, _ := members(ctx, a.client()); v != 2 || all != 2 {
		t.Fatalf("after remove: %d voters, %d members", v, all)
	}
	if out, err := run(t, "cluster", "status", "--addr", "http://"+a.http); err != nil || !strings.Contains(out, "failure tolerance 0") {
		t.Fatalf("cluster status after remove: %v\n%s", err, out)
	}
	if out, err := run(t, "chain", "verify", "--addr", "http://"+b.http); err != nil || !strings.Contains(out, "group 0: ok") {
		t.Fatalf("chain verify: %v\n%s", err, out)
	}

	// Stop everything and verify every data directory offline.
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)
	out, err = run(t, "chain", "verify", "--data", root, "--json")
	if err != nil {
		t.Fatalf("offline verify: %v\n%s", err, out)
	}
	var reps []map[string]any
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 4 {
		t.Fatalf("offline verify output: %v\n%s", err, out)
	}
	for _, r := range reps {
		if r["ok"] != true {
			t.Fatalf("offline verify: %v", r)
		}
	}
	// Offline verification refuses a directory without a chain store.
	if out, err := run(t, "chain", "verify", "--data", t.TempDir()); err == nil || !strings.Contains(out, "no chain store") {
		t.Fatalf("empty dir: %v\n%s", err, out)
	}
}

func TestNodeRefusesBadFlags(t *testing.T) {
	// Each bad command line is refused with the error that names what is
	// wrong and the documented exit status: 2 for a command line that
	// cannot be parsed, 1 for a node that cannot start.
	listen := func() []string {
		return []string{"--bind", freePort(t), "--http", freePort(t), "--gossip-bind", freePort(t)}
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"node"}, 2, "node: --data is required"},
		{append([]string{"node", "--data", t.TempDir(), "--groups", "0", "--gossip-key", gossipKey}, listen()...), 1, "Groups must be 1..1024, got 0"},
		{append([]string{"node", "--data", t.TempDir(), "--groups", "two"}, listen()...), 2, `invalid argument "two" for "--groups" flag`},
		{append([]string{"node", "--data", t.TempDir(), "--role", "boss", "--gossip-key", gossipKey}, listen()...), 1, `role "boss" (want voter or executor)`},
		{append([]string{"node", "--data", t.TempDir(), "--gossip-key", "not base64!"}, listen()...), 1, "--gossip-key is not base64"},
		{append([]string{"node", "--data", t.TempDir(), "--kme-url", "http://kme", "--gossip-key", gossipKey}, listen()...), 2, `key manager URL "http://kme": want https://`},
		{append([]string{"node", "--data", t.TempDir(), "--no-such-flag"}, listen()...), 2, "unknown flag: --no-such-flag"},
		// Gossip in the clear only when asked for.
		{append([]string{"node", "--data", t.TempDir(), "--bootstrap"}, listen()...), 1, "gossip must be encrypted"},
		{[]string{"tx", "submit", "--addr", "not a url", "x"}, 1, `bad API address "not a url"`},
		{[]string{"nope"}, 2, `unknown command "nope" for "qledger"`},
	} {
		out, err := run(t, c.args...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("%v: %v, want exit status %d and %q:\n%s", c.args, err, c.code, c.msg, out)
		}
	}
}

// TestDemo runs `qledger demo`, what `make demo` runs, end to end.
func TestDemo(t *testing.T) {
	out, err := run(t, "demo", "--txs", "200")
	if err != nil || !strings.Contains(out, "demo: OK") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"verified", "new leader", "ok  group 0", "ok  group 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDevCluster starts `qledger dev` (mutual TLS on a throwaway CA), uses
// it with the certificates it made, and stops it with SIGTERM.
func TestDevCluster(t *testing.T) {
	http := freePort(t)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	p := &proc{t: t, raft: "dev", http: http, tlsDir: tlsDir, args: []string{"dev", "--groups", "2", "--replicas", "1", "--http", http, "--data", dir}}
	p.start()
	ctx := context.Background()
	waitFor(t, "dev cluster ready", 20*time.Second, func() bool { return ready(ctx, p.client()) })
	for g := 0; g < 2; g++ {
		g := g
		if _, _, err := p.client().Submit(ctx, []byte("dev"), client.SubmitOptions{Group: &g}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "dev to print its addresses (after the first QKD keys)", 60*time.Second, func() bool {
		return strings.Contains(p.log.String(), "API: https://"+http)
	})
	addr := "https://" + http
	submitter, admin := tlsArgs(tlsDir, "submitter"), tlsArgs(tlsDir, "admin")
	// Without a certificate the API refuses the call.
	if out, err := run(t, "tx", "submit", "--addr", addr, "x"); err == nil {
		t.Fatalf("a submit without a certificate succeeded:\n%s", out)
	}
	// A write through the quantum-keyed channel, with the key manager and
	// certificates dev created.
	kmeURL := regexp.MustCompile(`Key manager[^:]*: (https://127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(p.log.String())
	if kmeURL == nil {
		t.Fatalf("dev did not print its key manager:\n%s", p.log.String())
	}
	out, err := run(t, append(append([]string{"tx", "submit", "--addr", addr}, submitter...), "--secure", "--kme", kmeURL[1], "--tls-dir", tlsDir, "sealed")...)
	if err != nil || !strings.Contains(out, "quantum-keyed channel") {
		t.Fatalf("secure submit: %v\n%s", err, out)
	}
	// Executors come and go at run time; scaling is an admin's.
	if out, err := run(t, append(append([]string{"cluster", "scale", "--addr", addr}, submitter...), "--executors", "2")...); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("a submitter scaled the cluster: %v\n%s", err, out)
	}
	if out, err := run(t, append(append([]string{"cluster", "scale", "--addr", addr}, admin...), "--executors", "2")...); err != nil || !strings.Contains(out, "2 executor nodes") {
		t.Fatalf("scale up: %v\n%s", err, out)
	}
	waitFor(t, "two executors as non-voters", 20*time.Second, func() bool {
		st, err := p.client().Cluster(ctx)
		if err != nil {
			return false
		}
		n := 0
		for _, g := range st.Groups {
			n += g.NonVoters
		}
		return n == 2
	})
	if out, err := run(t, append(append([]string{"cluster", "scale", "--addr", addr}, admin...), "--executors", "0")...); err != nil || !strings.Contains(out, "0 executor nodes") {
		t.Fatalf("scale down: %v\n%s", err, out)
	}
	// A client without a certificate of the CA gets no key.
	out, err = run(t, append(append([]string{"tx", "submit", "--addr", addr}, submitter...), "--secure", "--kme", kmeURL[1], "--tls-dir", t.TempDir(), "x")...)
	if err == nil {
		t.Fatalf("secure submit without certificates succeeded:\n%s", out)
	}
	p.signal(syscall.SIGTERM)
	// The data directory was kept (--data) and verifies offline.
	// Two group nodes and the two executors that ran: every store verifies.
	if out, err := run(t, "chain", "verify", "--data", dir); err != nil || strings.Count(out, ": ok") != 4 || strings.Contains(out, "FAILED") {
		t.Fatalf("verify dev data: %v\n%s", err, out)
	}
}

// TestMultiProcessBootstrapExpect starts three processes that only know
// one seed and expect three voters: they form one group together.
func TestMultiProcessBootstrapExpect(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), "--bootstrap-expect", "3")
	b := startProc(t, filepath.Join(root, "b"), freePort(t), freePort(t), "--bootstrap-expect", "3", "--join", a.gossip)
	c := startProc(t, filepath.Join(root, "c"), freePort(t), freePort(t), "--bootstrap-expect", "3", "--join", a.gossip)
	waitFor(t, "one group of three voters", 30*time.Second, func() bool {
		for _, p := range []*proc{a, b, c} {
			v, all, leader := members(ctx, p.client())
			if v != 3 || all != 3 || !leader {
				return false
			}
		}
		return true
	})
	if _, _, err := b.client().Submit(ctx, []byte("formed"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestMultiProcessTLS runs a permissioned cluster of separate processes:
// a CA made with `qledger ca`, node certificates for three nodes, mutual
// TLS between them and on the API; roles at the API, signed heads checked
// by `chain verify` and `audit watch`, certificates reloaded on SIGHUP, and
// a node without a certificate kept out.
func TestMultiProcessTLS(t *testing.T) {
	root := t.TempDir()
	caDir := filepath.Join(root, "ca")
	if out, err := run(t, "ca", "init", "--dir", caDir); err != nil {
		t.Fatalf("ca init: %v\n%s", err, out)
	}
	if out, err := run(t, "ca", "init", "--dir", caDir); err == nil {
		t.Fatalf("ca init over an existing CA succeeded:\n%s", out)
	}
	for _, c := range [][]string{
		{"--role", "node", "--name", "a", "--groups", "1", "--group", "0"},
		{"--role", "node", "--name", "b"},
		{"--role", "node", "--name", "c"},
		{"--role", "submitter", "--name", "submitter"},
		{"--role", "auditor", "--name", "auditor"},
		{"--role", "admin", "--name", "admin"},
	} {
		if out, err := run(t, append([]string{"ca", "issue", "--dir", caDir}, c...)...); err != nil {
			t.Fatalf("ca issue %v: %v\n%s", c, err, out)
		}
	}
	if out, err := run(t, "ca", "issue", "--dir", caDir, "--role", "root", "--name", "x"); err == nil {
		t.Fatalf("ca issue with an unknown role succeeded:\n%s", out)
	}
	start := func(name string, extra ...string) *proc {
		p := startProc(t, filepath.Join(root, name), freePort(t), freePort(t), append(tlsArgs(caDir, name), extra...)...)
		p.tlsDir = caDir
		return p
	}
	ctx := context.Background()
	a := start("a", "--bootstrap", "--kme-addr", freePort(t))
	waitFor(t, "node a ready", 20*time.Second, func() bool { return ready(ctx, a.client()) })
	b := start("b", "--join", a.gossip)
	c := start("c", "--join", a.gossip)
	waitFor(t, "three voters over TLS", 30*time.Second, func() bool {
		v, all, leader := members(ctx, c.client())
		return v == 3 && all == 3 && leader
	})
	// A node with the gossip key but no certificate never joins: a refuses
	// its announcement, on its first join and again on a retry.
	stranger := startProc(t, filepath.Join(root, "stranger"), freePort(t), freePort(t), "--join", a.gossip)
	var strangerID string
	waitFor(t, "the stranger to start", 30*time.Second, func() bool {
		m := regexp.MustCompile(`node started: .*node=([0-9a-f]{12})`).FindStringSubmatch(stranger.log.String())
		if m != nil {
			strangerID = m[1]
		}
		return m != nil
	})
	refused := regexp.MustCompile(`refused gossip member: .*name=` + strangerID)
	waitFor(t, "node a to refuse the stranger twice", 30*time.Second, func() bool { return len(refused.FindAllString(a.log.String(), -1)) >= 2 })
	if _, all, _ := members(ctx, a.client()); all != 3 {
		t.Fatalf("a node without a certificate joined: %d members", all)
	}

	addr := "https://" + c.http
	out, err := run(t, append(append([]string{"tx", "submit", "--addr", addr, "--json"}, tlsArgs(caDir, "submitter")...), "hello over mutual TLS")...)
	if err != nil {
		t.Fatalf("tx submit: %v\n%s", err, out)
	}
	if out, err := run(t, append(append([]string{"tx", "submit", "--addr", addr}, tlsArgs(caDir, "auditor")...), "an auditor writing")...); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("an auditor's write: %v\n%s", err, out)
	}
	// Plain HTTP to the TLS port: Go's TLS server answers 400 and nothing
	// else.
	if resp, err := http.Get("http://" + c.http + "/v1/cluster"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || bytes.Contains(body, []byte("groups")) {
			t.Fatalf("plain HTTP to a TLS API: %d %s", resp.StatusCode, body)
		}
	}
	out, err = run(t, append([]string{"chain", "verify", "--addr", addr}, tlsArgs(caDir, "auditor")...)...)
	if err != nil || !strings.Contains(out, "head signed by node") {
		t.Fatalf("chain verify: %v\n%s", err, out)
	}
	state := filepath.Join(root, "audit.json")
	for i := 0; i < 2; i++ {
		out, err = run(t, append([]string{"audit", "watch", "--once", "--addr", "https://" + b.http, "--state", state}, tlsArgs(caDir, "auditor")...)...)
		if err != nil || strings.Contains(out, "ALERT") {
			t.Fatalf("audit watch pass %d: %v\n%s", i, err, out)
		}
		if _, _, err := a.client().Submit(ctx, []byte(fmt.Sprint("between audits ", i)), client.SubmitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out, "extends the trusted log") {
		t.Fatalf("second audit pass did not check the new head:\n%s", out)
	}

	// SIGHUP reloads a node's certificate from its files.
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "certificates reloaded", 10*time.Second, func() bool {
		l := a.log.String()
		return strings.Contains(l, "SIGHUP: certificates reloaded") && strings.Contains(l, "SIGHUP: key manager certificates reloaded")
	})
	if _, _, err := c.client().Submit(ctx, []byte("after reload"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{a, b, c} {
		p.signal(syscall.SIGTERM)
	}
}

// TestRestartInPlace: a node started with --leave-on-terminate=false
// and stopped with SIGTERM hands over leadership if it leads and stops
// as a member: its group keeps it in the configuration (three voters,
// writes go on with two), and started again on its data directory it
// catches up without being added back.
func TestRestartInPlace(t *testing.T) {
	root := t.TempDir()
	inPlace := "--leave-on-terminate=false"
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), "--bootstrap", inPlace)
	ctx := context.Background()
	waitFor(t, "node a ready", time.Minute, func() bool { return a.client().Ready(ctx) == nil })
	b := startProc(t, filepath.Join(root, "b"), freePort(t), freePort(t), "--join", a.gossip, inPlace)
	c := startProc(t, filepath.Join(root, "c"), freePort(t), freePort(t), "--join", a.gossip, inPlace)
	procs := []*proc{a, b, c}
	waitFor(t, "three voters", 2*time.Minute, func() bool {
		v, all, leader := members(ctx, a.client())
		return v == 3 && all == 3 && leader
	})
	if _, _, err := a.client().Submit(ctx, []byte("before the restart"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	// Stop the leader: it hands over first.
	var stopped *proc
	waitFor(t, "a leader named", time.Minute, func() bool {
		st, err := a.client().Cluster(ctx)
		if err != nil || len(st.Groups) == 0 {
			return false
		}
		for _, m := range st.Groups[0].Members {
			for _, p := range procs {
				if m.Leader && m.Addr == p.raft {
					stopped = p
				}
			}
		}
		return stopped != nil
	})
	stopped.signal(syscall.SIGTERM)
	if !strings.Contains(stopped.log.String(), "staying a member of the cluster") {
		t.Fatalf("the node's log does not say it stopped in place:\n%s", stopped.log.String())
	}
	var other *proc
	for _, p := range procs {
		if p != stopped {
			other = p
		}
	}
	waitFor(t, "a new leader, the stopped node still a voter", time.Minute, func() bool {
		v, all, leader := members(ctx, other.client())
		return v == 3 && all == 3 && leader
	})
	for i := 0; i < 10; i++ {
		if _, _, err := other.client().Submit(ctx, []byte(fmt.Sprint("while stopped ", i)), client.SubmitOptions{}); err != nil {
			t.Fatalf("submit with one member stopped: %v", err)
		}
	}
	want, err := other.client().Head(ctx, 0, "linearizable")
	if err != nil {
		t.Fatal(err)
	}
	stopped.start()
	waitFor(t, "the restarted node ready and caught up", time.Minute, func() bool {
		h, err := stopped.client().Head(ctx, 0, "stale")
		return stopped.client().Ready(ctx) == nil && err == nil && h.Height >= want.Height
	})
	if v, all, _ := members(ctx, other.client()); v != 3 || all != 3 {
		t.Fatalf("after the restart: %d voters of %d members, want 3 of 3", v, all)
	}
}
