package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/fsm"
)

// replicas is a 1×3 group of `qledger node` processes. A replica killed
// with SIGKILL on a machine that keeps running keeps its chain store (the
// page cache held every write) and checks it at restart instead of
// rebuilding it. The stores are not durable (--sync-fsm=false), so their raft
// snapshots are copies a damaged store can be rebuilt from, and they
// snapshot often, so an older copy of a store falls behind raft's
// snapshot. Writes are acknowledged only through the API.
type replicas struct {
	t     *testing.T
	root  string
	procs []*proc
	ids   []string // node IDs, as the processes report them
	acked []string // acknowledged transaction IDs, in order
	seq   int
	// old holds a copy of a replica's chain.db taken while it was stopped,
	// and the group's commit index just before.
	old map[int]oldCopy
	// older is the copy kept before the current case's kill.
	older oldCopy

	mu         sync.Mutex
	violations []string // damaged replicas seen leading
	alarmsSeen int      // polls that found a replica alarmed
}

type oldCopy struct {
	raw    []byte
	commit uint64
}

func startReplicas(t *testing.T) *replicas {
	root := t.TempDir()
	r := &replicas{t: t, root: root, old: map[int]oldCopy{}}
	tune := []string{"--sync-fsm=false", "--scrub-interval", "0", "--compare-interval", "0",
		"--snapshot-threshold", "16", "--trailing-logs", "8", "--snapshot-interval", "300ms"}
	ctx := context.Background()
	a := startProc(t, filepath.Join(root, "a"), freePort(t), freePort(t), append(tune, "--bootstrap")...)
	waitFor(t, "node a ready", 30*time.Second, func() bool { return ready(ctx, a.client()) })
	b := startProc(t, filepath.Join(root, "b"), freePort(t), freePort(t), append(tune, "--join", a.gossip)...)
	c := startProc(t, filepath.Join(root, "c"), freePort(t), freePort(t), append(tune, "--join", a.gossip)...)
	r.procs = []*proc{a, b, c}
	waitFor(t, "three voters", time.Minute, func() bool {
		v, all, leader := members(ctx, a.client())
		return v == 3 && all == 3 && leader
	})
	for _, p := range r.procs {
		st, err := p.client().Cluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.ids = append(r.ids, st.Node.ID)
	}
	return r
}

// watch polls every running replica's own status until stop closes and
// records a replica that leads its group while an alarm it raised at
// start stands, or at a later term than the one it led in when a scrub
// raised its alarm (it must hand over, and never take leadership back).
func (r *replicas) watch(stop <-chan struct{}) {
	alarmTerm := map[string]uint64{} // alarm (node and time found) → first term seen
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for i, p := range r.procs { // a stopped replica does not answer
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := p.client().Cluster(ctx)
			cancel()
			if err != nil || st.ChainAlarm == nil || len(st.Groups) == 0 {
				continue
			}
			g, a := st.Groups[0], st.ChainAlarm
			r.mu.Lock()
			r.alarmsSeen++
			r.mu.Unlock()
			key := a.Node + a.Found
			if _, ok := alarmTerm[key]; !ok {
				alarmTerm[key] = g.Term
			}
			if g.State == "Leader" && (a.Source == "start" || g.Term > alarmTerm[key]) {
				r.mu.Lock()
				r.violations = append(r.violations, fmt.Sprintf("replica %d leads at term %d with its %s alarm raised (first seen at term %d): %s", i, g.Term, a.Source, alarmTerm[key], a.What))
				r.mu.Unlock()
			}
		}
	}
}

// healthy is a running replica other than not.
func (r *replicas) healthy(not int) *proc {
	for i, p := range r.procs {
		if i != not && p.running() {
			return p
		}
	}
	r.t.Fatal("no healthy replica")
	return nil
}

// leader is the index of the replica that leads, as a running replica
// other than not sees it.
func (r *replicas) leader(not int) int {
	var at int
	waitFor(r.t, "a leader", time.Minute, func() bool {
		st, err := r.healthy(not).client().Cluster(context.Background())
		if err != nil || len(st.Groups) == 0 || !st.Groups[0].HasLeader {
			return false
		}
		for i, id := range r.ids {
			if id == st.Groups[0].Leader {
				at = i
				return true
			}
		}
		return false
	})
	return at
}

// write commits n writes of equal size through running replicas other
// than not, retrying under one idempotency key until one acknowledges;
// it returns their receipts.
func (r *replicas) write(n, not int) []client.Receipt {
	r.t.Helper()
	var out []client.Receipt
	for range n {
		r.seq++
		key := fmt.Sprintf("w%05d", r.seq)
		var rc client.Receipt
		waitFor(r.t, "write "+key+" acknowledged", time.Minute, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			rc, _, err = r.healthy(not).client().Submit(ctx, []byte("payload "+key), client.SubmitOptions{IdempotencyKey: key})
			return err == nil
		})
		r.acked = append(r.acked, rc.ID)
		out = append(out, rc)
	}
	return out
}

// block is block h as a healthy replica holds it.
func (r *replicas) block(h uint64, not int) []byte {
	r.t.Helper()
	var raw []byte
	waitFor(r.t, fmt.Sprintf("block %d", h), time.Minute, func() bool {
		b, err := r.healthy(not).client().Block(context.Background(), 0, h, "linearizable")
		raw = b.Raw
		return err == nil
	})
	return raw
}

// caughtUp waits until replica i's store holds height h.
func (r *replicas) caughtUp(i int, h uint64) {
	r.t.Helper()
	waitFor(r.t, fmt.Sprintf("replica %d at height %d", i, h), time.Minute, func() bool {
		hd, err := r.procs[i].client().Head(context.Background(), 0, "stale")
		return err == nil && hd.Height >= h
	})
}

func (r *replicas) store(i int) string { return filepath.Join(r.procs[i].dir, fsm.StoreFile) }

// kill SIGKILLs replica i and keeps a copy of its store for a later
// older-copy case.
func (r *replicas) kill(i int) {
	r.t.Helper()
	st, err := r.healthy(i).client().Cluster(context.Background())
	if err != nil || len(st.Groups) == 0 {
		r.t.Fatalf("status before kill: %v", err)
	}
	r.procs[i].signal(syscall.SIGKILL)
	raw, err := os.ReadFile(r.store(i))
	if err != nil {
		r.t.Fatal(err)
	}
	r.old[i] = oldCopy{raw: raw, commit: st.Groups[0].Commit}
}

// settled waits until every replica serves the same chain at its own
// store (stale reads), holds every acknowledged write, reports no alarm,
// and replica i's blocks are byte for byte the leader's.
func (r *replicas) settled(i int) {
	r.t.Helper()
	ctx := context.Background()
	var want client.Head
	waitFor(r.t, "every replica at the same head, without alarm", 2*time.Minute, func() bool {
		var err error
		if want, err = r.healthy(i).client().Head(ctx, 0, "linearizable"); err != nil {
			return false
		}
		for _, p := range r.procs {
			h, err := p.client().Head(ctx, 0, "stale")
			st, serr := p.client().Cluster(ctx)
			if err != nil || serr != nil || h.Hash != want.Hash || st.ChainAlarm != nil {
				return false
			}
		}
		return true
	})
	got, err := r.procs[i].client().Blocks(ctx, 0, 1, int(want.Height), "stale")
	if err != nil || uint64(len(got)) != want.Height {
		r.t.Fatalf("replica %d's blocks: %d of %d, %v", i, len(got), want.Height, err)
	}
	lead, err := r.healthy(i).client().Blocks(ctx, 0, 1, int(want.Height), "linearizable")
	if err != nil || len(lead) != len(got) {
		r.t.Fatalf("the leader's blocks: %d of %d, %v", len(lead), want.Height, err)
	}
	for k, b := range got {
		if !bytes.Equal(b.Raw, lead[k].Raw) {
			r.t.Fatalf("replica %d's block %d differs from the leader's", i, b.Height)
		}
	}
	for _, p := range r.procs {
		for _, id := range r.acked {
			if _, err := p.client().Tx(ctx, id, "stale"); err != nil {
				r.t.Fatalf("acknowledged write %s on replica %s: %v", id, p.raft, err)
			}
		}
	}
}

// atRest damages a stopped replica's store: damage gets the replica's
// index and the receipts of six writes of equal size it holds, and
// returns what its damage report must match.
type atRest func(r *replicas, i int, recent []client.Receipt) *regexp.Regexp

// TestChainCorruptionOneProcessPerReplica damages the chain store of one
// replica of a 1×3 group of separate `qledger node` processes at a time —
// a follower's and the leader's; a flipped byte, a truncated file, two
// swapped blocks and an older copy of chain.db at rest, and a flipped
// byte and two swapped blocks under a running replica — and checks for
// each: the damaged replica reports which height and what (at restart,
// or in a scrub asked through another replica); a running damaged
// replica is not ready and serves only the healthy bytes at every read
// level; no damaged replica is seen leading (a damaged leader hands
// over); the rebuilt or repaired store is the leader's exact chain; and
// every acknowledged write is on every replica. Writes go on while the
// damaged replica is down or alarmed. One cluster serves every case.
func TestChainCorruptionOneProcessPerReplica(t *testing.T) {
	r := startReplicas(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); r.watch(stop) }()
	defer func() {
		close(stop)
		<-done
		if len(r.violations) > 0 {
			t.Errorf("damaged replicas led: %q", r.violations)
		}
		t.Logf("%d polls of the replicas' status found one alarmed, none leading", r.alarmsSeen)
	}()
	r.write(10, -1)

	flip := func(r *replicas, i int, recent []client.Receipt) *regexp.Regexp {
		h := recent[2].Height
		flipEvery(r.t, r.store(i), r.block(h, i))
		return regexp.MustCompile(fmt.Sprintf(`height=%d what="chain: transaction Merkle root mismatch`, h))
	}
	swap := func(r *replicas, i int, recent []client.Receipt) *regexp.Regexp {
		h := recent[2].Height
		a, b := r.block(h, i), r.block(h+1, i)
		if len(a) != len(b) || recent[3].Height != h+1 {
			r.t.Fatalf("blocks %d and %d: %d and %d bytes, next write at height %d", h, h+1, len(a), len(b), recent[3].Height)
		}
		swapEvery(r.t, r.store(i), a, b)
		return regexp.MustCompile(fmt.Sprintf(`height=%d what="chain: height gap`, h))
	}
	truncate := func(r *replicas, i int, recent []client.Receipt) *regexp.Regexp {
		// Cut the file where the first copy of the newest block starts:
		// bbolt grows files ahead of use, so a cut by size alone may take
		// only free space.
		raw, err := os.ReadFile(r.store(i))
		if err != nil {
			r.t.Fatal(err)
		}
		at := bytes.Index(raw, r.block(recent[5].Height, i))
		if at < 0 {
			r.t.Fatal("newest block not found in the file")
		}
		if err := os.Truncate(r.store(i), int64(at)); err != nil {
			r.t.Fatal(err)
		}
		return regexp.MustCompile(`what=`)
	}
	older := func(r *replicas, i int, _ []client.Receipt) *regexp.Regexp {
		if err := os.WriteFile(r.store(i), r.older.raw, 0o600); err != nil {
			r.t.Fatal(err)
		}
		return regexp.MustCompile(`is behind the raft snapshot`)
	}
	for _, c := range []struct {
		name   string
		leader bool
		damage atRest
	}{
		{"flipped byte, follower", false, flip},
		{"flipped byte, leader", true, flip},
		{"truncated file, follower", false, truncate},
		{"truncated file, leader", true, truncate},
		{"swapped blocks, follower", false, swap},
		{"swapped blocks, leader", true, swap},
		{"older copy, follower", false, older},
		{"older copy, leader", true, older},
	} {
		t.Run("at rest: "+c.name, func(t *testing.T) {
			r.t = t
			r.atRestCase(c.leader, c.damage, c.name)
		})
	}
	t.Run("running: flipped byte, leader", func(t *testing.T) {
		r.t = t
		r.runningCase(true, func(i int, recent []client.Receipt) (uint64, string) {
			h := recent[2].Height
			flipEvery(t, r.store(i), r.block(h, i))
			return h, "chain: transaction Merkle root mismatch"
		})
	})
	t.Run("running: swapped blocks, follower", func(t *testing.T) {
		r.t = t
		r.runningCase(false, func(i int, recent []client.Receipt) (uint64, string) {
			h := recent[2].Height
			swapEvery(t, r.store(i), r.block(h, i), r.block(h+1, i))
			return h, "chain: height gap"
		})
	})
	r.t = t
	// Every store verifies offline, with the processes stopped.
	for _, p := range r.procs {
		p.signal(syscall.SIGKILL)
	}
	if out, err := run(t, "chain", "verify", "--data", r.root); err != nil || strings.Count(out, ": ok") != 3 {
		t.Fatalf("offline verify: %v\n%s", err, out)
	}
}

// atRestCase kills a replica (the leader, or a follower), damages its
// store, writes on, restarts it and checks the damage report, the
// rebuild and the chain.
func (r *replicas) atRestCase(leader bool, damage atRest, name string) {
	t := r.t
	ctx := context.Background()
	i := r.target(leader, strings.HasPrefix(name, "older"))
	if strings.HasPrefix(name, "older") {
		r.pastCopy(i)
	}
	recent := r.write(6, -1)
	r.caughtUp(i, recent[5].Height)
	r.older = r.old[i]
	r.kill(i)
	want := damage(r, i, recent)
	r.write(5, i)
	r.procs[i].start()
	report := regexp.MustCompile(`chain store damaged; setting it aside[^\n]*`)
	waitFor(t, "the damage report", time.Minute, func() bool { return report.MatchString(r.procs[i].log.String()) })
	line := report.FindString(r.procs[i].log.String())
	if !want.MatchString(line) {
		t.Fatalf("damage report %q does not match %q", line, want)
	}
	t.Logf("replica %d (%.12s): %s", i, r.ids[i], line)
	waitFor(t, "the damaged store set aside", 30*time.Second, func() bool {
		_, err := os.Stat(r.store(i) + ".damaged")
		return err == nil
	})
	os.Remove(r.store(i) + ".damaged")
	waitFor(t, "the replica ready", time.Minute, func() bool { return ready(ctx, r.procs[i].client()) })
	r.write(3, -1)
	r.settled(i)
}

// target picks the replica a case damages: the leader, or a follower; for
// an older copy, one whose copy is kept, made the leader if need be.
func (r *replicas) target(leader, needCopy bool) int {
	ld := r.leader(-1)
	if !needCopy {
		if leader {
			return ld
		}
		return (ld + 1) % len(r.procs)
	}
	for i := range r.procs {
		if _, ok := r.old[i]; !ok || (i == ld) != leader {
			continue
		}
		return i
	}
	for i := range r.procs {
		if _, ok := r.old[i]; !ok || !leader {
			continue
		}
		waitFor(r.t, "leadership handed to the replica", time.Minute, func() bool {
			to, err := r.procs[ld].client().TransferLeader(context.Background(), 0, r.ids[i])
			return err == nil && to == r.ids[i]
		})
		return i
	}
	r.t.Fatal("no replica has an older copy of its store")
	return -1
}

var snapshotDone = regexp.MustCompile(`snapshot complete up to: .*\bindex=([0-9]+)`)

// pastCopy writes until replica i has taken a raft snapshot past its kept
// copy, so that copy lacks entries raft can no longer replay.
func (r *replicas) pastCopy(i int) {
	waitFor(r.t, "a raft snapshot past the kept copy", 2*time.Minute, func() bool {
		for _, m := range snapshotDone.FindAllStringSubmatch(r.procs[i].log.String(), -1) {
			if idx, _ := strconv.ParseUint(m[1], 10, 64); idx > r.old[i].commit+1 {
				return true
			}
		}
		r.write(2, -1)
		return false
	})
}

// runningCase damages a running replica's store (damage returns the first
// bad height and what), has a scrub through another replica find it, and
// checks containment, the repair and the chain.
func (r *replicas) runningCase(leader bool, damage func(i int, recent []client.Receipt) (uint64, string)) {
	t := r.t
	ctx := context.Background()
	i := r.target(leader, false)
	recent := r.write(6, -1)
	r.caughtUp(i, recent[5].Height)
	good := r.block(recent[2].Height, i)
	h, what := damage(i, recent)
	reps, err := r.healthy(i).client().Scrub(ctx, 0, "")
	if err != nil || len(reps) != 3 {
		t.Fatalf("scrub: %v %+v", err, reps)
	}
	for _, rep := range reps {
		switch {
		case rep.Node == r.ids[i]:
			if rep.Alarm == nil || rep.Alarm.Height != h || !strings.Contains(rep.Alarm.What, what) {
				t.Fatalf("the damaged replica's scrub report: %+v, want height %d and %q", rep, h, what)
			}
		case rep.Alarm != nil || rep.Error != "":
			t.Fatalf("a healthy replica's scrub report: %+v", rep)
		}
	}
	t.Logf("scrub: replica %d (%.12s) damaged at height %d: %s", i, r.ids[i], h, what)
	// Contained: not ready, and only the healthy bytes at every level.
	if err := r.procs[i].client().Ready(ctx); err == nil || !strings.Contains(err.Error(), "chain_corrupt") {
		t.Fatalf("readyz of the damaged replica: %v", err)
	}
	for _, lv := range []client.Level{"stale", "default", "linearizable"} {
		// A damaged leader hands over: reads wait for the next leader.
		var b client.Block
		waitFor(t, string(lv)+" read on the damaged replica", time.Minute, func() bool {
			var err error
			b, err = r.procs[i].client().Block(ctx, 0, recent[2].Height, lv)
			return err == nil
		})
		if !bytes.Equal(b.Raw, good) {
			t.Fatalf("%s read of block %d on the damaged replica: not the healthy bytes", lv, recent[2].Height)
		}
	}
	waitFor(t, "leadership away from the damaged replica", time.Minute, func() bool { return r.leader(i) != i })
	r.write(5, -1) // through every replica, the damaged one too
	reps, err = r.healthy(i).client().Repair(ctx, 0, r.ids[i])
	if err != nil || len(reps) != 1 || reps[0].Alarm != nil || reps[0].Error != "" {
		t.Fatalf("repair: %v %+v", err, reps)
	}
	r.write(3, -1)
	r.settled(i)
}

// swapEvery exchanges every copy of a with every copy of b (same length)
// in the file at path, in place (the file may be open by a running node:
// the edit lands in the page cache its memory map reads).
func swapEvery(t *testing.T, path string, a, b []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	put := func(needle, with []byte) int {
		n := 0
		for off := 0; ; {
			i := bytes.Index(raw[off:], needle)
			if i < 0 {
				return n
			}
			if _, err := fh.WriteAt(with, int64(off+i)); err != nil {
				t.Fatal(err)
			}
			n++
			off += i + len(needle)
		}
	}
	if put(a, b) == 0 || put(b, a) == 0 {
		t.Fatalf("blocks not found in %s", path)
	}
}
