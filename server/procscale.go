package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/cluster"
	"qledger/scaler/kubernetes"
)

// Autoscale configures a node's executor autoscaler with the process
// provider: executors are `qledger node --role executor` processes on this
// host, started and stopped as the group leader's decisions ask.
type Autoscale struct {
	// Config is the decision rule (bounds, targets, windows).
	Config cluster.AutoscaleConfig
	// External selects the external-scaler mode: decisions are only
	// exported (qledger_autoscale_desired_executors) for KEDA or an HPA to
	// act on; no process is started. The fields below are then unused.
	External bool
	// Kubernetes, if set, selects the kubernetes provider: each group's
	// executors are the replicas of a Deployment (or StatefulSet) the
	// provider scales through the Kubernetes API. Its Groups is set from
	// the node's. The fields below are then unused.
	Kubernetes *kubernetes.Config
	// Binary is the qledger executable (default: this process's).
	Binary string
	// Dir holds the executors' data directories (default DATA/executors);
	// each is removed when its executor stops.
	Dir string
	// Host is the address executors bind their ports on (default
	// 127.0.0.1).
	Host string
	// Join are the gossip seeds executors join through (default: this
	// node's gossip address).
	Join []string
	// Args are passed to every executor after the generated flags (--role,
	// --id, --groups, --data, --bind, --gossip-bind, --http, --join): the
	// gossip key or --insecure-gossip, the cluster label, timing, and,
	// with TLS, certificates the executors can use.
	Args []string
}

// ErrProvider means the process provider could not start or stop an
// executor.
var ErrProvider = errors.New("server: executor provider failed")

// ProcessProvider is the `process` cluster.ExecutorProvider: it runs
// executor nodes as child processes of this one. Stopping one sends
// SIGTERM, on which a node leaves its group (out of gossip and of the raft
// configuration) before it exits; a process that has not exited after
// StopTimeout is killed. It never starts or stops a voter. Safe for
// concurrent use.
type ProcessProvider struct {
	cfg    Autoscale
	groups int
	logger hclog.Logger
	// StopTimeout bounds a graceful stop.
	StopTimeout time.Duration

	mu    sync.Mutex
	procs map[int][]*child
}

type child struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// NewProcessProvider returns a provider for a cluster of groups groups.
func NewProcessProvider(cfg Autoscale, groups int, logger hclog.Logger) (*ProcessProvider, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrProvider, err)
		}
		cfg.Binary = exe
	}
	if cfg.Dir == "" || len(cfg.Join) == 0 {
		return nil, fmt.Errorf("%w: no directory or no gossip seed for executors", ErrProvider)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &ProcessProvider{cfg: cfg, groups: groups, logger: logger.Named("executors"), StopTimeout: 30 * time.Second, procs: map[int][]*child{}}, nil
}

// Executors returns how many executor processes of group run.
func (p *ProcessProvider) Executors(_ context.Context, group int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reap(group)
	return len(p.procs[group]), nil
}

// reap forgets the children of group that exited on their own.
func (p *ProcessProvider) reap(group int) {
	live := p.procs[group][:0]
	for _, c := range p.procs[group] {
		select {
		case <-c.done:
			p.logger.Warn("executor exited on its own", "group", group, "dir", c.dir, "state", c.cmd.ProcessState.String())
			os.RemoveAll(c.dir)
		default:
			live = append(live, c)
		}
	}
	p.procs[group] = live
}

// SetExecutors starts or stops executor processes of group until k run:
// the newest stop first.
func (p *ProcessProvider) SetExecutors(ctx context.Context, group, k int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reap(group)
	for len(p.procs[group]) < k {
		c, err := p.start(group)
		if err != nil {
			return len(p.procs[group]), err
		}
		p.procs[group] = append(p.procs[group], c)
	}
	for len(p.procs[group]) > k {
		list := p.procs[group]
		c := list[len(list)-1]
		p.procs[group] = list[:len(list)-1]
		if err := p.stop(ctx, c); err != nil {
			return len(p.procs[group]), err
		}
	}
	return len(p.procs[group]), nil
}

// start launches one executor of group.
func (p *ProcessProvider) start(group int) (*child, error) {
	id := cluster.NewNodeIDInGroup(group, p.groups).String()
	dir := filepath.Join(p.cfg.Dir, "executor-"+id[:12])
	ports, err := freePorts(p.cfg.Host, 3)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProvider, err)
	}
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProvider, err)
	}
	args := []string{"node", "--role", "executor", "--id", id, "--groups", fmt.Sprint(p.groups), "--data", filepath.Join(dir, "data"),
		"--bind", ports[0], "--gossip-bind", ports[1], "--http", ports[2], "--join", strings.Join(p.cfg.Join, ",")}
	cmd := exec.Command(p.cfg.Binary, append(args, p.cfg.Args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: start executor: %v", ErrProvider, err)
	}
	c := &child{cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(c.done) }()
	p.logger.Info("executor started", "group", group, "id", id[:12], "pid", cmd.Process.Pid, "raft", ports[0], "api", ports[2])
	return c, nil
}

// stop asks an executor to leave and exit, kills it after StopTimeout,
// and removes its data.
func (p *ProcessProvider) stop(ctx context.Context, c *child) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(p.StopTimeout)
	defer t.Stop()
	var err error
	select {
	case <-c.done:
	case <-t.C:
		err = fmt.Errorf("%w: executor pid %d did not exit within %s; killed", ErrProvider, c.cmd.Process.Pid, p.StopTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("%w: executor pid %d: %v; killed", ErrProvider, c.cmd.Process.Pid, ctx.Err())
	}
	if err != nil {
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	p.logger.Info("executor stopped", "pid", c.cmd.Process.Pid, "state", c.cmd.ProcessState.String())
	os.RemoveAll(c.dir)
	return err
}

// Close stops every executor this provider started.
func (p *ProcessProvider) Close(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	for g, list := range p.procs {
		for _, c := range list {
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.stop(ctx, c) }()
		}
		delete(p.procs, g)
	}
	wg.Wait()
}

// freePorts returns n distinct free TCP ports on host (the gossip port is
// UDP too; a clash is reported by the executor and counted as its exit).
func freePorts(host string, n int) ([]string, error) {
	out := make([]string, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrProvider, err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}
