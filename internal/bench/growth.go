package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"qledger/api/client"
)

// GrowthConfig is one run of Growth.
type GrowthConfig struct {
	// Binary is the qledger executable run as `node` processes.
	Binary string
	// To is the chain size, in transactions, the last step reaches.
	To int
	// Steps is how many sizes are measured, spaced by a constant factor
	// (3) and ending at To; the first is To/3^(Steps-1).
	Steps int
	// Clients write concurrently through the three nodes (closed loop).
	Clients int
	// Payload is the size of one transaction's payload in bytes.
	Payload int
	// Reads is how many transactions (with proof) and heads each step
	// reads to measure read latency.
	Reads int
	// Durable runs the nodes in their default mode (a durable chain
	// store, raft snapshots are references to it); false runs them with
	// --sync-fsm=false --reference-snapshots=false (the store written
	// without fsync, every raft snapshot a full copy).
	Durable bool
	// Keys gives every write an idempotency key (each adds a
	// de-duplication record to the chain store). Without keys a write
	// retried after an error may commit twice; disk per transaction is
	// divided by the log's actual size either way.
	Keys bool
	// LogLevel of the node processes (their logs are shown on failure).
	LogLevel string
	// Markdown prints a Markdown table.
	Markdown bool
}

// Validate checks the run's shape.
func (c GrowthConfig) Validate() error {
	if c.To < 1 || c.Steps < 1 || c.Clients < 1 || c.Payload < 1 || c.Reads < 1 || c.Binary == "" {
		return errors.New("bench: growth needs --to, --steps, --clients, --payload and --reads of at least 1, and a binary")
	}
	return nil
}

// sizes are the chain sizes measured.
func (c GrowthConfig) sizes() []int {
	out := make([]int, c.Steps)
	for i := range out {
		out[i] = max(1, int(float64(c.To)/math.Pow(3, float64(c.Steps-1-i))))
	}
	return slices.Compact(out)
}

// growthStep is what one step measured.
type growthStep struct {
	size              int
	writeRate         float64       // acknowledged tx/s at cfg.Clients while growing
	txP50, txP99      time.Duration // GET /v1/tx/{id} with proof
	headP50           time.Duration
	chain, raft, snap float64 // bytes per tx per replica, mean over the replicas
	snapMs            float64 // the newest snapshot's duration (from the node logs; -1: none yet)
	snapBytes         int64   // the newest snapshot's size on disk
	// cleanOpen and killOpen are how long the restarted process took to
	// open its node (data directory, start check, chain store, raft) as
	// its "node started" log line says: the part of a restart that can
	// grow with the chain, without rejoining or catching up.
	// leave*: the node left its group (POST /v1/node/leave) and was added
	// back; inPlace*: SIGTERM with --leave-on-terminate=false, the node
	// staying a member.
	leaveOpen, leaveReady     time.Duration
	inPlaceOpen, inPlaceReady time.Duration
	killOpen, killReady       time.Duration
	killCaughtUp              time.Duration
}

// Growth grows one group of three `qledger node` processes to cfg.To
// transactions of cfg.Payload bytes, written by cfg.Clients closed-loop
// clients spread over the nodes, and at each step reports: the write
// rate while growing, read latencies (a transaction with its proof, the
// head), the disk each replica holds per transaction by file (chain
// store, raft log, raft snapshots), the newest raft snapshot's duration
// and size, the time a follower takes to answer ready after it left its
// group (POST /v1/node/leave: this includes being added back), after a
// clean stop in place (SIGTERM; the nodes run with
// --leave-on-terminate=false) and after SIGKILL, and after SIGKILL until it
// has applied what the leader had committed when it was killed. Every child process
// is killed, and the run's directory removed, before it returns.
func Growth(cfg GrowthConfig, out, log io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newMemberBench(log, cfg.Binary, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer b.close()
	// The default (LAN) raft timing: a loaded machine must not turn a
	// growth run into an election study.
	b.timing = []string{"--leave-on-terminate=false"}
	if !cfg.Durable {
		b.timing = append(b.timing, "--sync-fsm=false", "--reference-snapshots=false")
	}
	fmt.Fprintf(out, "qledger bench growth: 1 group of 3 `qledger node` processes on loopback (default raft timing; node flags %s), %d clients over HTTP, %d-byte payloads, idempotency keys %v, to %d transactions; GOMAXPROCS %d, %d CPUs\n",
		strings.Join(b.timing, " "), cfg.Clients, cfg.Payload, cfg.Keys, cfg.To, runtime.GOMAXPROCS(0), runtime.NumCPU())
	tab := newTable(out, cfg.Markdown, "tx", "write tx/s", "× first step", "tx read p50 ms", "tx read p99 ms", "head p50 ms",
		"chain B/tx", "raft B/tx", "snapshots B/tx", "total B/tx", "snapshot ms", "snapshot bytes", "leave+rejoin open s", "leave+rejoin ready s", "SIGTERM in place open s", "SIGTERM in place ready s", "SIGKILL open s", "SIGKILL ready s", "SIGKILL caught up s")
	err = func() error {
		if err := b.bootstrap(ctx); err != nil {
			return err
		}
		g := &grower{b: b, cfg: cfg}
		var first float64
		for _, size := range cfg.sizes() {
			st, err := g.step(ctx, size)
			if err != nil {
				return err
			}
			if first == 0 {
				first = st.writeRate
			}
			row := []string{fmt.Sprint(st.size), fmt.Sprintf("%.0f", st.writeRate), fmt.Sprintf("%.2f", st.writeRate/first), ms(st.txP50), ms(st.txP99), ms(st.headP50),
				fmt.Sprintf("%.0f", st.chain), fmt.Sprintf("%.0f", st.raft), fmt.Sprintf("%.0f", st.snap), fmt.Sprintf("%.0f", st.chain+st.raft+st.snap),
				fmt.Sprintf("%.0f", st.snapMs), fmt.Sprint(st.snapBytes), secs(st.leaveOpen), secs(st.leaveReady), secs(st.inPlaceOpen), secs(st.inPlaceReady), secs(st.killOpen), secs(st.killReady), secs(st.killCaughtUp)}
			tab.rows = append(tab.rows, row)
			if !cfg.Markdown {
				fmt.Fprintf(out, "  %s tx: %s tx/s (%s× the first step); reads: tx p50 %s ms p99 %s ms, head p50 %s ms; disk B/tx chain %s raft %s snapshots %s total %s; "+
					"snapshot %s ms %s bytes; restart after leaving: node open %s s, ready (rejoined) %s s; after SIGTERM in place: open %s s, ready %s s; after SIGKILL: open %s s, ready %s s, caught up %s s\n", row[0], row[1], row[2], row[3], row[4],
					row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[13], row[14], row[15], row[16], row[17], row[18])
			}
		}
		return nil
	}()
	if err != nil {
		if ctx.Err() == nil {
			b.dumpLogs()
		}
		return err
	}
	tab.print()
	return nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// grower grows the chain step by step and keeps a sample of acknowledged
// transaction IDs to read back.
type grower struct {
	b       *memberBench
	cfg     GrowthConfig
	written int
	ids     []string
}

func (g *grower) step(ctx context.Context, size int) (growthStep, error) {
	st := growthStep{size: size}
	rate, err := g.grow(ctx, size-g.written)
	if err != nil {
		return st, err
	}
	st.writeRate = rate
	if st.txP50, st.txP99, st.headP50, err = g.reads(ctx); err != nil {
		return st, err
	}
	if err := g.settle(ctx); err != nil {
		return st, err
	}
	head, err := g.b.group(ctx)
	if err != nil {
		return st, err
	}
	st.chain, st.raft, st.snap = g.disk(max(1, int(head.LogSize)))
	st.snapMs, st.snapBytes = g.lastSnapshot()
	if st.leaveOpen, st.leaveReady, _, err = g.restart(ctx, leave); err != nil {
		return st, err
	}
	if st.inPlaceOpen, st.inPlaceReady, _, err = g.restart(ctx, stopWith(syscall.SIGTERM)); err != nil {
		return st, err
	}
	if st.killOpen, st.killReady, st.killCaughtUp, err = g.restart(ctx, stopWith(syscall.SIGKILL)); err != nil {
		return st, err
	}
	return st, nil
}

// grow writes n transactions with cfg.Clients writers spread over the
// nodes, and returns the acknowledged rate.
func (g *grower) grow(ctx context.Context, n int) (float64, error) {
	if n <= 0 {
		return 0, nil
	}
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	payload := strings.Repeat("x", g.cfg.Payload)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range g.cfg.Clients {
		api := g.b.procs[c%len(g.b.procs)].api
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				key := fmt.Sprintf("g%d", g.written+int(i))
				body := []byte(key + payload[len(key)%len(payload):])
				r, err := submitRetrying(ctx, api, key, body, g.cfg.Keys)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("bench: write %s: %w", key, err)
				}
				if err == nil && (len(g.ids) < 4096 || rand.IntN(64) == 0) {
					if len(g.ids) < 4096 {
						g.ids = append(g.ids, r.ID)
					} else {
						g.ids[rand.IntN(len(g.ids))] = r.ID
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	g.written += n
	return float64(n) / time.Since(start).Seconds(), nil
}

// submitRetrying writes body (under the idempotency key key if withKey,
// which makes a retry safe), retrying until it is acknowledged or
// failoverWrite has passed: a leader change under load is not a failed
// write.
func submitRetrying(ctx context.Context, api *client.Client, key string, body []byte, withKey bool) (client.Receipt, error) {
	deadline := time.Now().Add(failoverWrite)
	var opt client.SubmitOptions
	if withKey {
		opt.IdempotencyKey = key
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, failoverWrite)
		r, _, err := api.Submit(wctx, body, opt)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reads measures cfg.Reads reads of a transaction with its proof and of
// the head, from one node at a time, one at a time.
func (g *grower) reads(ctx context.Context) (txP50, txP99, headP50 time.Duration, err error) {
	var tx, head []time.Duration
	for i := range g.cfg.Reads {
		api := g.b.procs[i%len(g.b.procs)].api
		id := g.ids[rand.IntN(len(g.ids))]
		d, err := timedRetrying(ctx, func() error { _, err := api.Tx(ctx, id, client.Level("")); return err })
		if err != nil {
			return 0, 0, 0, fmt.Errorf("bench: read %s: %w", id, err)
		}
		tx = append(tx, d)
		if d, err = timedRetrying(ctx, func() error { _, err := api.Head(ctx, 0, client.Level("")); return err }); err != nil {
			return 0, 0, 0, fmt.Errorf("bench: head: %w", err)
		}
		head = append(head, d)
	}
	return percentile(tx, 0.5), percentile(tx, 0.99), percentile(head, 0.5), nil
}

// timedRetrying times the first successful call of read, retrying for up
// to memberDeadline (a read during an election fails, and is not what
// the step measures).
func timedRetrying(ctx context.Context, read func() error) (time.Duration, error) {
	deadline := time.Now().Add(memberDeadline)
	for {
		t0 := time.Now()
		err := read()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return time.Since(t0), err
		}
		time.Sleep(memberPoll)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// settle waits until every replica has applied what the leader commits.
func (g *grower) settle(ctx context.Context) error {
	_, err := g.b.waitFor(ctx, "every replica caught up", func(st client.GroupStatus) bool {
		for _, p := range g.b.procs {
			s, err := p.api.Cluster(ctx)
			if err != nil || len(s.Groups) == 0 || s.Groups[0].Applied < st.Commit {
				return false
			}
		}
		return true
	})
	return err
}

// disk is the bytes per transaction each replica holds, by file, the
// mean over the replicas.
func (g *grower) disk(size int) (chain, raft, snap float64) {
	for _, p := range g.b.procs {
		dir := filepath.Join(g.b.root, p.name)
		chain += float64(fileSize(filepath.Join(dir, "chain.db")))
		raft += float64(fileSize(filepath.Join(dir, "raft.db")))
		snap += float64(treeSize(filepath.Join(dir, "snapshots")))
	}
	n := float64(len(g.b.procs) * size)
	return chain / n, raft / n, snap / n
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func treeSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// lastSnapshot reads the newest raft snapshot's duration from the node
// logs (raft's "starting snapshot up to" and "snapshot complete up to"
// lines) and its size on disk; -1 ms if no node has snapshotted yet.
func (g *grower) lastSnapshot() (ms float64, bytes int64) {
	ms = -1
	var newest time.Time
	for _, p := range g.b.procs {
		data, _ := os.ReadFile(p.logFile.Name())
		var began time.Time
		for _, line := range strings.Split(string(data), "\n") {
			ts, ok := logTime(line)
			switch {
			case !ok:
			case strings.Contains(line, "starting snapshot up to"):
				began = ts
			case strings.Contains(line, "snapshot complete up to") && !began.IsZero() && ts.After(newest):
				newest, ms = ts, float64(ts.Sub(began))/float64(time.Millisecond)
			}
		}
		for _, s := range snapshotFiles(filepath.Join(g.b.root, p.name, "snapshots")) {
			bytes = max(bytes, s)
		}
	}
	return ms, bytes
}

// logTime parses the timestamp hclog starts a line with.
func logTime(line string) (time.Time, bool) {
	f, _, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15:04:05.000Z0700", f)
	return t, err == nil
}

// snapshotFiles are the sizes of the newest snapshot's state file.
func snapshotFiles(dir string) []int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "*", "state.bin"))
	slices.Sort(names)
	if len(names) == 0 {
		return nil
	}
	return []int64{fileSize(names[len(names)-1])}
}

// stopWith stops a node process with sig.
func stopWith(sig syscall.Signal) func(context.Context, *nodeProc) error {
	return func(_ context.Context, p *nodeProc) error { return p.signal(sig) }
}

// leave has a node leave its group over the API and waits for its
// process to exit, as it does once it has left.
func leave(ctx context.Context, p *nodeProc) error {
	rctx, cancel := context.WithTimeout(ctx, memberExit)
	defer cancel()
	if err := p.api.Leave(rctx); err != nil {
		return fmt.Errorf("bench: node %s leave: %w", p.name, err)
	}
	p.signalled = true
	select {
	case <-p.done:
		return nil
	case <-time.After(memberExit):
		return fmt.Errorf("bench: node %s did not exit %s after leaving", p.name, memberExit)
	}
}

// restart stops a follower with stop, starts it again on the same
// addresses and data, and returns how long until it answers ready and
// until it has applied what the leader had committed when it stopped.
func (g *grower) restart(ctx context.Context, stop func(context.Context, *nodeProc) error) (opened, ready, caughtUp time.Duration, err error) {
	st, err := g.b.group(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	leader := g.b.byID(st, st.Leader)
	var p *nodeProc
	for _, q := range g.b.procs {
		if q != leader && !q.exited() {
			p = q
			break
		}
	}
	if p == nil {
		return 0, 0, 0, errors.New("bench: no follower to restart")
	}
	if err := stop(ctx, p); err != nil {
		return 0, 0, 0, err
	}
	np, err := g.b.again(p)
	if err != nil {
		return 0, 0, 0, err
	}
	deadline := time.Now().Add(10 * memberDeadline)
	for ready == 0 || caughtUp == 0 {
		if np.exited() {
			return 0, 0, 0, fmt.Errorf("bench: restarted node %s exited: %v", np.name, np.cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("bench: restarted node %s not caught up in %s", np.name, 10*memberDeadline)
		}
		rctx, cancel := context.WithTimeout(ctx, memberRequest)
		if ready == 0 && np.api.Ready(rctx) == nil {
			ready = time.Since(np.started)
		}
		if s, err := np.api.Cluster(rctx); caughtUp == 0 && err == nil && len(s.Groups) > 0 && s.Groups[0].Applied >= st.Commit {
			caughtUp = time.Since(np.started)
		}
		cancel()
		select {
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		case <-time.After(memberPoll):
		}
	}
	return startedAfter(np.logFile.Name(), np.started), ready, caughtUp, nil
}

// startedAfter is how long after since the node logging to path logged
// "node started" (the first such line stamped after since; 0 if none).
func startedAfter(path string, since time.Time) time.Duration {
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		// hclog stamps lines to the millisecond; since is exact.
		if ts, ok := logTime(line); ok && strings.Contains(line, "node started") && !ts.Before(since.Truncate(time.Millisecond)) {
			return ts.Sub(since)
		}
	}
	return 0
}

// again starts an exited node's process again, with the same arguments,
// and puts it in its place.
func (b *memberBench) again(p *nodeProc) (*nodeProc, error) {
	np := &nodeProc{name: p.name, raft: p.raft, http: p.http, gossip: p.gossip, api: p.api, logFile: p.logFile, done: make(chan struct{})}
	np.cmd = exec.Command(p.cmd.Path, p.cmd.Args[1:]...)
	np.cmd.Stdout, np.cmd.Stderr = np.logFile, np.logFile
	np.started = time.Now()
	if err := np.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: restart node %s: %w", p.name, err)
	}
	go func() { np.cmd.Wait(); close(np.done) }()
	for i, q := range b.procs {
		if q == p {
			b.procs[i] = np
		}
	}
	return np, nil
}
