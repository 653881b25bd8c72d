package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"qledger/api/client"
	"qledger/cluster"
)

// failoverWrite bounds one benchmark write: far above any failover, so
// the client's deadline is never what ends a write.
const failoverWrite = 30 * time.Second

// FailoverConfig is one run of Failover.
type FailoverConfig struct {
	// Binary is the qledger executable run as `node` processes.
	Binary string
	// Rounds is how many faults each client count sees; at least 1.
	Rounds int
	// Clients lists the client counts measured, each in its own rounds:
	// 1 is a sequential writer.
	Clients []int
	// Pause is how long the leader stays stopped; longer than an election.
	Pause time.Duration
	// Loopback runs the nodes with --loopback-timing instead of the
	// default (LAN) raft timing.
	Loopback bool
	// LogLevel of the node processes (their logs are shown on failure).
	LogLevel string
	// Markdown prints a Markdown table.
	Markdown bool
}

// Failover measures what clients feel when a group leader stops: three
// `qledger node` processes of cfg.Binary on loopback, clients writing
// through the two followers over the HTTP API (closed loop, one write at a
// time each, an idempotency key per write), and the leader stopped with
// SIGSTOP for cfg.Pause, then resumed. For each round it reports raft's
// election time (from the stop until a follower reports itself leader on
// a later term, polled every 10 ms), the client-visible gap (the longest
// time without an acknowledged write to any client, from the last
// acknowledgement before the stop), write latencies across the fault, the
// failed writes, and how long after the resume the leader counts three
// healthy voters again. Every child process is killed, and every
// temporary directory removed, before it returns, also on error or
// interrupt.
func Failover(cfg FailoverConfig, out, log io.Writer) error {
	if cfg.Rounds < 1 || len(cfg.Clients) == 0 || cfg.Pause <= 0 {
		return errors.New("bench: failover needs rounds >= 1, client counts and a positive pause")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newMemberBench(log, cfg.Binary, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer b.close()
	timing, profile := cluster.DefaultConfig(), "default (LAN)"
	if !cfg.Loopback {
		b.timing = nil
	} else {
		timing.LoopbackTiming()
		profile = "--loopback-timing"
	}
	fmt.Fprintf(out, "qledger bench failover: 1 group of 3 `qledger node` processes on loopback, raft timing %s (heartbeat %s, election %s); "+
		"clients write through the followers over HTTP; the leader is SIGSTOPped for %s, %d rounds per client count; GOMAXPROCS %d, %d CPUs\n",
		profile, timing.HeartbeatTimeout, timing.ElectionTimeout, cfg.Pause, cfg.Rounds, runtime.GOMAXPROCS(0), runtime.NumCPU())
	tab := newTable(out, cfg.Markdown, "clients", "round", "election ms", "client gap ms", "gap − election ms", "p50 ms", "p99 ms", "max ms", "writes", "failed", "healthy after resume ms")
	err = func() error {
		if err := b.bootstrap(ctx); err != nil {
			return err
		}
		for _, clients := range cfg.Clients {
			for r := 1; r <= cfg.Rounds; r++ {
				res, err := b.failoverRound(ctx, clients, cfg.Pause)
				if err != nil {
					return err
				}
				row := []string{fmt.Sprint(clients), fmt.Sprint(r), ms(res.election), ms(res.gap), ms(res.gap - res.election),
					ms(res.pct(0.50)), ms(res.pct(0.99)), ms(res.pct(1)), fmt.Sprint(len(res.latencies)), fmt.Sprint(res.failed), ms(res.healthy)}
				tab.rows = append(tab.rows, row)
				if !cfg.Markdown {
					fmt.Fprintf(out, "  %2d clients, round %d: election %s ms, client gap %s ms (%s ms past the election), p50 %s ms, p99 %s ms, max %s ms, %d writes, %d failed, healthy %s ms after resume\n",
						clients, r, row[2], row[3], row[4], row[5], row[6], row[7], len(res.latencies), res.failed, row[10])
				}
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

// failoverResult is one round of Failover.
type failoverResult struct {
	election, gap, healthy time.Duration
	latencies              []time.Duration // writes started within a second of the stop or later, sorted
	failed                 int
}

func (r failoverResult) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

// ackLog records write outcomes; it is safe for concurrent use.
type ackLog struct {
	mu     sync.Mutex
	writes []benchWrite
}

type benchWrite struct {
	start, end time.Time
	err        error
}

func (a *ackLog) add(w benchWrite) {
	a.mu.Lock()
	a.writes = append(a.writes, w)
	a.mu.Unlock()
}

// failoverRound waits for three healthy voters, runs clients writers
// through the followers, stops the leader for pause, resumes it and
// measures.
func (b *memberBench) failoverRound(ctx context.Context, clients int, pause time.Duration) (failoverResult, error) {
	if _, err := b.waitFor(ctx, "three healthy voters", settled(3)); err != nil {
		return failoverResult{}, err
	}
	st, err := b.group(ctx)
	if err != nil {
		return failoverResult{}, err
	}
	leader := b.leader
	var followers []*nodeProc
	for _, p := range b.procs {
		if p != leader && !p.exited() {
			followers = append(followers, p)
		}
	}
	var acks ackLog
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failoverWriter(wctx, &acks, followers[c%len(followers)].api, fmt.Sprintf("failover-%d-%d", time.Now().UnixNano(), c))
		}()
	}
	defer func() { stopWriters(); wg.Wait() }()
	time.Sleep(time.Second) // steady writing before the fault

	stopped := time.Now()
	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return failoverResult{}, fmt.Errorf("bench: stop node %s: %w", leader.name, err)
	}
	elected, err := newLeader(ctx, followers, st.Term)
	if err == nil {
		time.Sleep(time.Until(stopped.Add(pause)))
	}
	if cerr := leader.cmd.Process.Signal(syscall.SIGCONT); cerr != nil && err == nil {
		err = fmt.Errorf("bench: resume node %s: %w", leader.name, cerr)
	}
	if err != nil {
		return failoverResult{}, err
	}
	resumed := time.Now()
	// The resumed node reports itself leader, with its old judgements,
	// until it hears of the later term: only a later term's leader counts.
	healthyAt, err := b.waitFor(ctx, "three healthy voters after the resume", func(now client.GroupStatus) bool {
		return now.Term > st.Term && settled(3)(now)
	})
	if err != nil {
		return failoverResult{}, err
	}
	time.Sleep(time.Until(resumed.Add(time.Second))) // writes go on a little past the resume
	stopWriters()
	wg.Wait()
	res := summarize(acks.writes, stopped, resumed)
	res.election, res.healthy = elected.Sub(stopped), healthyAt.Sub(resumed)
	return res, nil
}

// summarize measures the writes around a fault from stopped to resumed:
// the longest time without an acknowledgement (from the last one before
// the stop), and the latencies of writes started from a second before the
// stop until the resume.
func summarize(writes []benchWrite, stopped, resumed time.Time) failoverResult {
	var res failoverResult
	var acks []time.Time
	for _, w := range writes {
		if w.err == nil {
			acks = append(acks, w.end)
		}
		if w.start.Before(stopped.Add(-time.Second)) || w.start.After(resumed) {
			continue
		}
		if w.err != nil {
			res.failed++
		}
		res.latencies = append(res.latencies, w.end.Sub(w.start))
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	slices.Sort(res.latencies)
	for i := 1; i < len(acks); i++ {
		if acks[i].After(stopped) && acks[i-1].Before(resumed) {
			res.gap = max(res.gap, acks[i].Sub(acks[i-1]))
		}
	}
	return res
}

// failoverWriter writes through api, one write at a time, until ctx ends.
func failoverWriter(ctx context.Context, acks *ackLog, api *client.Client, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("%s-%d", prefix, i)
		wctx, cancel := context.WithTimeout(context.Background(), failoverWrite)
		w := benchWrite{start: time.Now()}
		_, _, w.err = api.Submit(wctx, []byte(key), client.SubmitOptions{IdempotencyKey: key})
		w.end = time.Now()
		cancel()
		acks.add(w)
	}
}

// newLeader polls nodes every 10 ms until one reports itself leader on a
// term after term, and returns when it was seen.
func newLeader(ctx context.Context, nodes []*nodeProc, term uint64) (time.Time, error) {
	deadline := time.Now().Add(memberDeadline)
	for time.Now().Before(deadline) {
		for _, p := range nodes {
			rctx, cancel := context.WithTimeout(ctx, memberRequest)
			st, err := p.api.Cluster(rctx)
			cancel()
			if err == nil && len(st.Groups) > 0 && st.Groups[0].State == "Leader" && st.Groups[0].Term > term {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(memberPoll):
		}
	}
	return time.Time{}, fmt.Errorf("bench: no follower led a new term %s after the leader stopped", memberDeadline)
}
