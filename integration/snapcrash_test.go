package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/fsm"
)

// crashLab is one group of three node processes in the default mode
// (durable chain stores, raft snapshots are references to them) that
// snapshot every 16 entries and keep 4, so a follower stopped for a
// while needs the leader's snapshot.
type crashLab struct {
	t     *testing.T
	nodes []*proc
	acks  []string // IDs of every acknowledged write
	n     int
}

var crashFlags = []string{"--snapshot-threshold", "16", "--snapshot-interval", "50ms", "--trailing-logs", "4"}

// newCrashLab starts a (bootstrap), b and c; env goes to a and c only.
func newCrashLab(t *testing.T, env ...string) *crashLab {
	return newCrashLabOf(t, "", env...)
}

// newCrashLabOf is newCrashLab with every node running the executable
// bin (empty: this build).
func newCrashLabOf(t *testing.T, bin string, env ...string) *crashLab {
	root := t.TempDir()
	l := &crashLab{t: t}
	a := &proc{t: t, dir: filepath.Join(root, "a"), raft: freePort(t), http: freePort(t), gossip: freePort(t), env: env, bin: bin}
	a.args = append([]string{"node", "--data", a.dir, "--bind", a.raft, "--http", a.http, "--gossip-bind", a.gossip, "--gossip-key", gossipKey, "--loopback-timing", "--log-level", "info", "--bootstrap"}, crashFlags...)
	a.start()
	ctx := context.Background()
	waitFor(t, "node a ready", time.Minute, func() bool { return ready(ctx, a.client()) })
	l.nodes = []*proc{a}
	for _, name := range []string{"b", "c"} {
		p := &proc{t: t, dir: filepath.Join(root, name), raft: freePort(t), http: freePort(t), gossip: freePort(t), bin: bin}
		if name == "c" {
			p.env = env
		}
		p.args = append([]string{"node", "--data", p.dir, "--bind", p.raft, "--http", p.http, "--gossip-bind", p.gossip, "--gossip-key", gossipKey, "--loopback-timing", "--log-level", "info", "--join", a.gossip}, crashFlags...)
		p.start()
		l.nodes = append(l.nodes, p)
	}
	waitFor(t, "three voters", time.Minute, func() bool {
		v, all, leader := members(ctx, l.nodes[2].client())
		return v == 3 && all == 3 && leader
	})
	return l
}

// write commits n writes through any node that takes them, keeping every
// acknowledged ID.
func (l *crashLab) write(n int) {
	l.t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		l.n++
		key := fmt.Sprint("w", l.n)
		var err error
		for attempt := 0; attempt < 200; attempt++ {
			p := l.nodes[(l.n+attempt)%len(l.nodes)]
			if !p.running() {
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var r client.Receipt
			r, _, err = p.client().Submit(wctx, []byte(key), client.SubmitOptions{IdempotencyKey: key})
			cancel()
			if err == nil {
				l.acks = append(l.acks, r.ID)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			l.t.Fatalf("write %s: %v", key, err)
		}
	}
}

// exited waits until p's process has exited (a kill failpoint fired).
func (l *crashLab) exited(p *proc, what string, writeWhileWaiting bool) {
	l.t.Helper()
	done := p.done
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case <-done:
			return
		case <-deadline:
			l.t.Fatalf("node %s did not die at %s", p.raft, what)
		case <-time.After(20 * time.Millisecond):
			if writeWhileWaiting {
				l.write(1)
			}
		}
	}
}

// watch returns a channel closed when p's current process exits.
func watch(p *proc) <-chan struct{} {
	return p.done
}

// restart starts p again with env (nil: no failpoint).
func (l *crashLab) restart(p *proc, env ...string) {
	p.env = env
	p.start()
}

func (l *crashLab) leader() *proc {
	ctx := context.Background()
	for _, p := range l.nodes {
		if !p.running() {
			continue
		}
		if st, err := p.client().Cluster(ctx); err == nil && len(st.Groups) > 0 && st.Groups[0].State == "Leader" {
			return p
		}
	}
	return nil
}

// check waits until every replica holds the leader's head and every
// acknowledged write, then stops them all and verifies each chain store
// in full, offline, and that they are equal.
func (l *crashLab) check() {
	l.t.Helper()
	ctx := context.Background()
	waitFor(l.t, "three voters again", 2*time.Minute, func() bool {
		v, all, leader := members(ctx, l.nodes[0].client())
		return v == 3 && all == 3 && leader
	})
	// Each replica's own status (its store and raft), not a read, which
	// a replica still catching up forwards to the leader.
	waitFor(l.t, "every replica to have applied the leader's commit", 2*time.Minute, func() bool {
		ld := l.leader()
		if ld == nil {
			return false
		}
		want, err := ld.client().Cluster(ctx)
		if err != nil || len(want.Groups) == 0 {
			return false
		}
		for _, p := range l.nodes {
			st, err := p.client().Cluster(ctx)
			if err != nil || len(st.Groups) == 0 || st.Groups[0].Applied < want.Groups[0].Commit || st.Groups[0].Height != want.Groups[0].Height {
				return false
			}
		}
		return true
	})
	for _, p := range l.nodes {
		p.signal(syscall.SIGKILL)
	}
	var head chain.Header
	for i, p := range l.nodes {
		path := filepath.Join(p.dir, fsm.StoreFile)
		if _, err := fsm.VerifyFile(path, 0); err != nil {
			l.t.Fatalf("replica %s: %v", p.raft, err)
		}
		s, err := fsm.OpenStoreReadOnly(path)
		if err != nil {
			l.t.Fatal(err)
		}
		h, _, err := s.Head()
		if err != nil {
			l.t.Fatal(err)
		}
		if i > 0 && h != head {
			l.t.Fatalf("replica %s head %d %s, replica %s %d %s", p.raft, h.Height, h.Hash(), l.nodes[0].raft, head.Height, head.Hash())
		}
		head = h
		for _, id := range l.acks {
			var txID chain.Hash
			if err := txID.UnmarshalText([]byte(id)); err != nil {
				l.t.Fatal(err)
			}
			if _, err := s.Tx(txID); err != nil {
				l.t.Fatalf("replica %s lost acknowledged write %s: %v", p.raft, id, err)
			}
		}
		s.Close()
	}
}

// TestCrashAtEachSnapshotStep kills a follower at each step of taking a
// reference snapshot, restarts it without the failpoint, and checks that
// every replica verifies, is equal, and holds every acknowledged write.
func TestCrashAtEachSnapshotStep(t *testing.T) {
	for _, fp := range []string{"snapshot-after-sync", "snapshot-before-close"} {
		t.Run(fp, func(t *testing.T) {
			l := newCrashLab(t)
			b := l.nodes[1]
			b.signal(syscall.SIGKILL)
			l.restart(b, "QLEDGER_FAILPOINTS="+fp+"=kill")
			l.exited(b, fp, true)
			l.restart(b)
			l.write(20)
			l.check()
		})
	}
}

// TestCrashAtEachRestoreStep kills a follower that needs the leader's
// snapshot at each step of installing it, restarts it, and checks.
func TestCrashAtEachRestoreStep(t *testing.T) {
	for _, fp := range []string{"restore-after-copy", "restore-before-swap", "restore-after-swap"} {
		t.Run(fp, func(t *testing.T) {
			l := newCrashLab(t)
			l.write(10)
			b := l.nodes[1]
			b.signal(syscall.SIGKILL)
			l.write(120) // the leader snapshots and compacts past b
			l.restart(b, "QLEDGER_FAILPOINTS="+fp+"=kill")
			l.exited(b, fp, false)
			l.restart(b)
			l.write(10)
			l.check()
		})
	}
}

// TestCrashWhileSendingSnapshot kills the leader as it finishes streaming
// its live store to a follower (InstallSnapshot): a and c carry the
// failpoint, so whichever leads dies; each is restarted without it, and
// the follower is installed by the next leader. Every replica checks.
func TestCrashWhileSendingSnapshot(t *testing.T) {
	fp := "QLEDGER_FAILPOINTS=install-send-end=kill"
	l := newCrashLab(t, fp)
	a, b, c := l.nodes[0], l.nodes[1], l.nodes[2]
	l.write(10)
	b.signal(syscall.SIGKILL)
	l.write(120)
	l.restart(b)
	died := 0
	watched := map[*proc]<-chan struct{}{a: watch(a), c: watch(c)}
	waitFor(t, "b installed, every sender that died restarted", 3*time.Minute, func() bool {
		for p, done := range watched {
			select {
			case <-done:
				died++
				l.restart(p)
				delete(watched, p) // restarted without the failpoint
			default:
			}
		}
		st, err := b.client().Cluster(context.Background())
		return died > 0 && err == nil && len(st.Groups) > 0 && st.Groups[0].Applied > 100
	})
	// A sender that never died still carries the failpoint, and its
	// process has a waiter here: stop it and start it without.
	for p, done := range watched {
		p.cmd.Process.Kill()
		<-done
		l.restart(p)
	}
	l.write(10)
	l.check()
}
