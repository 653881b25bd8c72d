package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"qledger/chain"
	"qledger/fsm"
)

// ChainAlarm is damage found in one replica's chain store. While it is
// raised the replica serves no read of its group (reads are forwarded to
// the leader), signs no head, refuses leadership and takes no snapshot.
type ChainAlarm struct {
	Node  string `json:"node"`
	Group int    `json:"group"`
	// Height is the first bad height (0: the damage is not tied to one
	// block, e.g. an unreadable file).
	Height uint64 `json:"height"`
	What   string `json:"what"`
	// Source is what found it: "start" (the check before serving; the
	// store is then rebuilt from the raft snapshot and log), "scrub" (a
	// full verification) or "compare" (another replica disagrees).
	Source string    `json:"source"`
	Found  time.Time `json:"found"`
}

func (a *ChainAlarm) Error() string {
	return fmt.Sprintf("chain store of group %d on node %.12s damaged at height %d: %s (found by %s)", a.Group, a.Node, a.Height, a.What, a.Source)
}

// defaultCheckWindow is CheckWindow when the config leaves it zero.
const defaultCheckWindow = 64

// integrity is a node's watch over its chain store: the damage found at
// start, the alarm, and the full verifications (scrubs).
type integrity struct {
	alarm      atomic.Pointer[ChainAlarm]
	scrubNow   chan chan scrubDone
	verifiedTo atomic.Uint64 // the height the running or last scrub reached
	repairing  atomic.Bool
}

type scrubDone struct {
	res ScrubResult
	err error
}

// ScrubResult is one full verification of one replica's chain store.
type ScrubResult struct {
	Node    string      `json:"node"`
	Group   int         `json:"group"`
	Blocks  uint64      `json:"blocks"`
	Txs     uint64      `json:"txs"`
	Seconds float64     `json:"seconds"`
	Alarm   *ChainAlarm `json:"alarm,omitempty"`
}

// openChainStore opens the chain store. A store is reused in place if it
// holds every commit made before the stop — a clean stop, a durable
// store (written with SyncFSM, every commit fsynced, as the sync marker
// records: wasDurable), or a process that died while
// the machine kept running (same boot ID: the page cache held every
// write, and bbolt's two meta pages make a torn last commit invisible) —
// and if the start check passes: bbolt opens it, its newest CheckWindow
// blocks verify in full (fsm.CheckRecent), and its applied index lies
// between the latest raft snapshot's and the end of the raft log — below
// it, entries the log no longer holds are missing (an older copy of the
// file); beyond it, the file is not this log's. Raft then re-applies the
// entries after the store's applied index. Otherwise the store is set
// aside (a damaged one as chain.db.damaged) and rebuilt from the raft
// snapshot and log, the damage is raised as an alarm until the rebuilt
// store verifies, and trusted is false. A store whose snapshots are
// references to it (SyncFSM) cannot be rebuilt from them: a damaged one
// is replaced by a healthy peer's verified snapshot (reseedFromPeers) and
// is then trusted, with the alarm raised until it verifies in full; if
// no peer gives one, the node stops with ErrStoreLost and the damaged
// file stays in place.
func (n *Node) openChainStore(logs raft.LogStore, snaps raft.SnapshotStore) (trusted bool, err error) {
	chainPath := filepath.Join(n.cfg.DataDir, fsm.StoreFile)
	cleanPath := filepath.Join(n.cfg.DataDir, cleanMarker)
	bootPath := filepath.Join(n.cfg.DataDir, bootMarker)
	_, cleanErr := os.Stat(cleanPath)
	_, chainErr := os.Stat(chainPath)
	sameBoot := sameBootAs(bootPath)
	durable := wasDurable(n.cfg.DataDir, snaps)
	trusted = durable || cleanErr == nil || os.IsNotExist(chainErr) || sameBoot
	if err := os.Remove(cleanPath); err != nil && !os.IsNotExist(err) {
		return false, fmt.Errorf("cluster: %w", err)
	}
	if cleanErr != nil && chainErr == nil && trusted {
		n.logger.Warn("last stop was not clean; recovering the chain store in place", "durable", durable, "same_boot", sameBoot)
	}
	if !trusted {
		n.logger.Warn("last stop was not clean and the machine restarted since; rebuilding the chain store from the raft snapshot and log")
		if err := n.refusedRebuild(snaps, "the machine restarted before the chain store was flushed"); err != nil {
			return false, err
		}
		if err := os.Remove(chainPath); err != nil {
			return false, fmt.Errorf("cluster: reset chain store: %w", err)
		}
	} else if chainErr == nil {
		d, ok, err := n.checkAtStart(chainPath, logs, snaps)
		if err != nil {
			return false, err
		}
		if !ok {
			lost := n.refusedRebuild(snaps, fmt.Sprintf("damaged at height %d: %s", d.Height, d.What))
			from := "the raft snapshot and log"
			if lost != nil {
				from = "a healthy peer's snapshot"
			}
			n.logger.Error("chain store damaged; setting it aside and rebuilding it from "+from, "height", d.Height, "what", d.What)
			if err := os.Rename(chainPath, chainPath+".damaged"); err != nil {
				return false, fmt.Errorf("cluster: set aside damaged chain store: %w", err)
			}
			n.integ.alarm.Store(&ChainAlarm{Node: n.info.ID, Group: n.group, Height: d.Height, What: d.What, Source: "start", Found: time.Now()})
			trusted = false
			if lost != nil {
				if err := n.reseedFromPeers(chainPath, logs, snaps); err != nil {
					// As it was: the next start finds the damage again.
					_ = os.Rename(chainPath+".damaged", chainPath)
					return false, fmt.Errorf("%w; no healthy peer's snapshot could replace it: %v", lost, err)
				}
				trusted = true // a verified copy holding the raft snapshot's entries
			}
		}
	}
	if err := writeBootMarker(bootPath); err != nil {
		n.logger.Warn("could not record the boot ID; a crash will rebuild the chain store", "error", err)
	}
	if n.store, err = openStoreMarked(n.cfg, chainPath, uint32(n.group)); err != nil {
		return false, err
	}
	n.fsm = fsm.New(n.store, n.cfg.Logger)
	return trusted, nil
}

// syncMarker, in the data directory, records how the chain store has
// been written since it was last opened: syncOn (every commit fsynced,
// so any crash leaves it at a committed state) or syncOff (without
// fsync: a machine crash may tear it).
const (
	syncMarker = "chain.sync"
	syncOn     = "fsync\n"
	syncOff    = "no-fsync\n"
)

// openStoreMarked opens the chain store as cfg says and keeps the sync
// marker true at every instant: a store about to be written without
// fsync is marked so (durably) before it is opened; a store opened with
// fsync is marked durable only after everything written before, perhaps
// without fsync, has been flushed.
func openStoreMarked(cfg Config, path string, group uint32) (*fsm.Store, error) {
	marker := filepath.Join(cfg.DataDir, syncMarker)
	if !cfg.SyncFSM {
		if err := writeFileDurably(marker, syncOff); err != nil {
			return nil, fmt.Errorf("cluster: record how the chain store is written: %w", err)
		}
	}
	s, err := fsm.OpenStore(path, group, fsm.StoreOptions{NoSync: !cfg.SyncFSM, ReferenceSnapshots: cfg.ReferenceSnapshots})
	if err != nil || !cfg.SyncFSM {
		return s, err
	}
	err = s.Sync()
	if err == nil {
		err = writeFileDurably(marker, syncOn)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("cluster: record how the chain store is written: %w", err)
	}
	return s, nil
}

// wasDurable reports whether the chain store in dir was written with an
// fsync per commit since it was last opened: as the sync marker says;
// in a data directory from before the marker, if the newest raft
// snapshot is a reference (only a durable store writes one; otherwise
// the store is treated as written without fsync, which costs at most a
// rebuild).
func wasDurable(dir string, snaps raft.SnapshotStore) bool {
	b, err := os.ReadFile(filepath.Join(dir, syncMarker))
	if err == nil {
		return string(b) == syncOn
	}
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return false
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return false
	}
	defer rc.Close()
	ref, _ := fsm.IsReference(rc)
	return ref
}

// writeFileDurably replaces the file at path with data: a temporary
// file, fsynced, renamed over it, and the directory fsynced.
func writeFileDurably(path, data string) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrStoreLost: the chain store cannot be used, this node's raft
// snapshots refer to it instead of copying it, so it cannot be rebuilt
// locally, and no healthy peer's snapshot could replace it.
var ErrStoreLost = errors.New("cluster: chain store lost")

// refusedRebuild returns ErrStoreLost if the newest raft snapshot is a
// reference to the chain store (a rebuild from it would need the store
// itself), saying why the store is unusable and how to recover.
func (n *Node) refusedRebuild(snaps raft.SnapshotStore, why string) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return nil // raft reports an unreadable snapshot itself
	}
	defer rc.Close()
	if ref, _ := fsm.IsReference(rc); !ref {
		return nil
	}
	return fmt.Errorf("%w: %s, and the raft snapshot %s refers to the store rather than copying it; "+
		"seed this replica again from a healthy one ('qledger snapshot save' from the group's leader, then 'qledger snapshot restore' into an empty data directory), or remove it from the group and add a new node",
		ErrStoreLost, why, metas[0].ID)
}

// bootMarker, in the data directory, holds the kernel boot ID under which
// the chain store was last opened: a process that died under the same
// boot ID left every write in the page cache.
const bootMarker = "chain.boot"

// bootIDPath is Linux's ID of the running boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

func sameBootAs(marker string) bool {
	now, err := os.ReadFile(bootIDPath)
	if err != nil || len(now) == 0 {
		return false
	}
	was, err := os.ReadFile(marker)
	return err == nil && string(was) == string(now)
}

func writeBootMarker(marker string) error {
	id, err := os.ReadFile(bootIDPath)
	if err != nil {
		os.Remove(marker)
		return err
	}
	tmp := marker + ".tmp"
	if err := os.WriteFile(tmp, id, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, marker)
}

// checkAtStart is the start check of openChainStore, after converting a
// store of an older on-disk format (fsm.MigrateFile); ok=false with what
// is wrong. An error (a store of another group or of a newer format)
// stops the node.
func (n *Node) checkAtStart(path string, logs raft.LogStore, snaps raft.SnapshotStore) (d fsm.Damage, ok bool, err error) {
	window := n.cfg.CheckWindow
	if window == 0 {
		window = defaultCheckWindow
	}
	migrated, err := fsm.MigrateFile(path)
	migrateDamage, damagedOld := fsm.DamageOf(err)
	if err != nil && !damagedOld {
		return d, false, fmt.Errorf("cluster: %w", err)
	}
	if migrated {
		n.logger.Info("chain store converted to the current on-disk format", "format", fsm.FormatVersion)
	}
	// The check names damage itself; a store of the old format that
	// could not be converted for damage is rebuilt like any other.
	applied, err := fsm.CheckFile(path, uint32(n.group), window)
	if errors.Is(err, fsm.ErrFormat) && damagedOld {
		return migrateDamage, false, nil
	}
	if d, ok := fsm.DamageOf(err); ok {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("cluster: %w", err)
	}
	var snapIndex uint64
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	last, _ := logs.LastIndex()
	switch {
	case applied < snapIndex && !stateless(logs, applied+1, snapIndex):
		return fsm.Damage{What: fmt.Sprintf("applied index %d is behind the raft snapshot at %d: an older copy of the store, entries %d..%d are missing", applied, snapIndex, applied+1, snapIndex)}, false, nil
	case applied > max(last, snapIndex):
		return fsm.Damage{What: fmt.Sprintf("applied index %d is beyond the raft log's last index %d: the store is not this node's", applied, max(last, snapIndex))}, false, nil
	}
	return fsm.Damage{}, true, nil
}

// stateless reports whether the raft log still holds every entry from
// first to last and none of them changes the state machine: barriers and
// no-ops, which raft counts as applied (a snapshot's index may be one)
// without ever handing them to the state machine, so a store's applied
// index legitimately stops short of them. A linearizable read appends a
// barrier; a snapshot taken right after one has a higher index than the
// store it stands for. Entries the log no longer holds count as changes.
func stateless(logs raft.LogStore, first, last uint64) bool {
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type != raft.LogBarrier && l.Type != raft.LogNoop {
			return false
		}
	}
	return true
}

// chainAlarm returns the raised alarm, or nil.
func (n *Node) chainAlarm() *ChainAlarm { return n.integ.alarm.Load() }

// raiseAlarm raises an alarm for damage found by source (once; the first
// finding stays until repair). A leader hands over leadership.
func (n *Node) raiseAlarm(d fsm.Damage, source string) {
	a := &ChainAlarm{Node: n.info.ID, Group: n.group, Height: d.Height, What: d.What, Source: source, Found: time.Now()}
	if !n.integ.alarm.CompareAndSwap(nil, a) {
		return
	}
	n.fsm.MarkDamaged(fmt.Errorf("%w: %s", fsm.ErrDamaged, a.Error()))
	n.metrics.setCorrupt(a)
	n.publishAlarm()
	n.logger.Error("chain store damaged; this replica stops serving its group and refuses leadership", "height", d.Height, "what", d.What, "found_by", source)
	n.refuseLeadership()
}

// clearAlarm clears an alarm after the store was rebuilt and verified.
func (n *Node) clearAlarm() {
	if a := n.integ.alarm.Swap(nil); a != nil {
		n.metrics.setCorrupt(nil)
		n.publishAlarm()
		n.logger.Info("chain store verified; alarm cleared", "was_height", a.Height, "was", a.What)
	}
}

// publishAlarm puts the alarm (or its absence) in gossip metadata, so
// every node's status shows it.
func (n *Node) publishAlarm() {
	if n.gossip == nil {
		return
	}
	a := n.chainAlarm()
	n.gossip.setMeta(func(m *nodeMeta) {
		m.CorruptAt, m.Corrupt = 0, ""
		if a != nil {
			m.CorruptAt, m.Corrupt = a.Height, truncate(a.What, 120)
		}
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// refuseLeadership hands leadership to another voter while the alarm is
// raised and this node leads.
func (n *Node) refuseLeadership() {
	if n.chainAlarm() == nil || !n.IsLeader() {
		return
	}
	if err := n.handOver().Error(); err != nil {
		n.logger.Warn("damaged replica leads its group and could not hand over leadership", "error", err)
	}
}

// queryDamaged serves a read of this node's group while its store is
// damaged: from the leader, at the asked level, if another node leads.
func (n *Node) queryDamaged(ctx context.Context, q Query, a *ChainAlarm) (QueryResult, error) {
	leader, ok := n.Leader()
	if !ok || leader.ID == n.info.ID || q.Hops >= maxHops {
		return QueryResult{}, fmt.Errorf("%w: %s", ErrChainCorrupt, a.Error())
	}
	q.Hops++
	var res QueryResult
	err := n.client.call(ctx, leader.Addr, mQuery, q, &res)
	return res, err
}

// watchIntegrity runs the full verifications: right after start (once the
// store has caught up after a rebuild), every ScrubInterval, and on
// demand (Scrub); compares headers with the other replicas every
// CompareInterval; and refuses leadership while an alarm is raised.
func (n *Node) watchIntegrity() {
	tick := time.NewTicker(n.cfg.HeartbeatTimeout / 2)
	defer tick.Stop()
	var compare <-chan time.Time
	if n.cfg.CompareInterval > 0 {
		t := time.NewTicker(n.cfg.CompareInterval)
		defer t.Stop()
		compare = t.C
	}
	var next <-chan time.Time // the next periodic scrub
	due := true               // the verification after start
	for {
		var reply chan scrubDone
		select {
		case <-n.stop:
			return
		case reply = <-n.integ.scrubNow:
		case <-next:
			due = true
		case <-tick.C:
			n.refuseLeadership()
		case <-compare:
			n.comparePass()
		}
		if reply == nil && (!due || n.staleReady() != nil) {
			continue
		}
		res, err := n.scrubLocal(context.Background())
		if errors.Is(err, fsm.ErrStoreReplaced) && reply == nil {
			continue // a snapshot was installed: verify the new file
		}
		due = false
		if n.cfg.ScrubInterval > 0 {
			next = time.After(n.cfg.ScrubInterval)
		}
		if reply != nil {
			reply <- scrubDone{res, err}
		}
	}
}

// comparePass compares this replica with its peers once (compareWithPeers),
// for at most the RPC timeout and no longer than the node runs: a member
// that never answers (this node cut off from its group) holds a compare
// for the whole timeout, and Close waits for watchIntegrity.
func (n *Node) comparePass() {
	ctx, stopped := n.untilStop(context.Background())
	defer stopped()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	n.compareWithPeers(ctx)
}

// scrubLocal verifies the whole store — its bbolt pages
// (fsm.Store.CheckPagesLive), then its chain and indexes — raises the
// alarm on damage and clears an alarm raised at start once the rebuilt
// store verifies.
func (n *Node) scrubLocal(ctx context.Context) (ScrubResult, error) {
	start := time.Now()
	ctx, cancel := n.untilStop(ctx)
	defer cancel()
	// The page check first: a chain pass over garbage pages could fault.
	err := n.store.CheckPagesLive()
	var rep chain.VerifyReport
	if err == nil {
		rep, err = n.store.Verify(ctx, fsm.VerifyOptions{Rate: n.cfg.ScrubRate, Progress: func(done, total uint64) {
			n.integ.verifiedTo.Store(done)
			n.metrics.setVerified(done, total)
		}})
	}
	res := ScrubResult{Node: n.info.ID, Group: n.group, Blocks: rep.Blocks, Txs: rep.Txs, Seconds: time.Since(start).Seconds()}
	n.metrics.observeScrub(err)
	if d, ok := fsm.DamageOf(err); ok {
		n.raiseAlarm(d, "scrub")
		res.Alarm = n.chainAlarm()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("cluster: scrub: %w", err)
	}
	if a := n.chainAlarm(); a != nil && a.Source == "start" {
		n.clearAlarm()
	}
	res.Alarm = n.chainAlarm()
	return res, nil
}

// ScrubLocal verifies this replica's whole chain store now, at the
// configured rate, and returns what it found; damage raises the alarm.
func (n *Node) ScrubLocal(ctx context.Context) (ScrubResult, error) {
	reply := make(chan scrubDone, 1)
	select {
	case n.integ.scrubNow <- reply:
	case <-ctx.Done():
		return ScrubResult{}, fmt.Errorf("%w: waiting to scrub", ErrTimeout)
	case <-n.stop:
		return ScrubResult{}, ErrShutdown
	}
	select {
	case d := <-reply:
		return d.res, d.err
	case <-ctx.Done():
		return ScrubResult{}, fmt.Errorf("%w: scrubbing", ErrTimeout)
	case <-n.stop:
		return ScrubResult{}, ErrShutdown
	}
}

// RepairLocal rebuilds this replica's chain store from its own raft
// state: the latest raft snapshot (verified in full) and the log after
// it, or the whole log if the snapshot is damaged or absent and the log
// still starts at index 1 (fsm.FSM.Rebuild). When the log no longer
// holds what that needs, it rebuilds from a healthy peer's snapshot (the
// leader's first; never an alarmed replica's), verified in full, and its
// own log after it (rebuildFromPeer). The rebuilt store is verified in
// full before it replaces the damaged one (kept as chain.db.damaged),
// and the alarm is cleared; a failure changes nothing. The rebuild goes
// on if ctx ends first; one runs at a time.
func (n *Node) RepairLocal(ctx context.Context) (ScrubResult, error) {
	if !n.integ.repairing.CompareAndSwap(false, true) {
		return ScrubResult{}, fmt.Errorf("%w: a repair is already running", ErrConflict)
	}
	done := make(chan scrubDone, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.integ.repairing.Store(false)
		res, err := n.rebuild()
		done <- scrubDone{res, err}
	}()
	select {
	case d := <-done:
		return d.res, d.err
	case <-ctx.Done():
		return ScrubResult{}, fmt.Errorf("%w: repairing (it goes on)", ErrTimeout)
	}
}

func (n *Node) rebuild() (ScrubResult, error) {
	ctx, cancel := n.untilStop(context.Background())
	defer cancel()
	start := time.Now()
	n.logger.Warn("rebuilding the chain store from the raft snapshot and log")
	err := errLocalSnapshot
	if metas, lerr := n.snaps.List(); lerr == nil && len(metas) > 0 {
		var rc io.ReadCloser
		if _, rc, err = n.snaps.Open(metas[0].ID); err == nil {
			err = n.fsm.Rebuild(ctx, rc, n.logStore, n.raft.AppliedIndex)
			rc.Close()
		}
	}
	if err != nil {
		n.logger.Warn("rebuild from the latest snapshot failed; replaying the whole raft log", "error", err)
		err = n.fsm.Rebuild(ctx, nil, n.logStore, n.raft.AppliedIndex)
	}
	if errors.Is(err, fsm.ErrLogIncomplete) {
		n.logger.Warn("the raft log no longer holds every entry; rebuilding from a healthy peer's snapshot", "error", err)
		err = n.rebuildFromPeer(ctx)
	}
	if err != nil {
		n.logger.Error("chain store rebuild failed", "error", err)
		return ScrubResult{}, fmt.Errorf("cluster: repair: %w", err)
	}
	n.clearAlarm()
	rep, err := n.store.Verify(ctx, fsm.VerifyOptions{})
	res := ScrubResult{Node: n.info.ID, Group: n.group, Blocks: rep.Blocks, Txs: rep.Txs, Seconds: time.Since(start).Seconds()}
	if d, ok := fsm.DamageOf(err); ok {
		n.raiseAlarm(d, "scrub")
	}
	res.Alarm = n.chainAlarm()
	return res, nil
}

var errLocalSnapshot = errors.New("cluster: no local raft snapshot")

// ScrubRequest asks for a scrub or repair of group's replicas: Node, if
// set, names one replica; otherwise every replica of the group.
type ScrubRequest struct {
	Group int    `json:"group"`
	Node  string `json:"node,omitempty"`
}

// ScrubReport is one replica's answer to a scrub or repair.
type ScrubReport struct {
	ScrubResult
	Error string `json:"error,omitempty"`
}

// Scrub verifies the chain store of the replicas req names, each at its
// configured rate, and reports what each found (damage raises the
// replica's alarm). A replica that does not finish within the RPC
// timeout goes on; its report says so and status shows the outcome.
func (n *Node) Scrub(ctx context.Context, req ScrubRequest) ([]ScrubReport, error) {
	return n.onReplicas(ctx, req, mScrub, func(ctx context.Context) (ScrubResult, error) { return n.ScrubLocal(ctx) })
}

// Repair rebuilds the chain store of the replicas req names (RepairLocal).
// Each rebuilds from its own raft log and snapshot, never from another
// replica's store, so a damaged replica is never a source.
func (n *Node) Repair(ctx context.Context, req ScrubRequest) ([]ScrubReport, error) {
	return n.onReplicas(ctx, req, mRepair, n.RepairLocal)
}

func (n *Node) onReplicas(ctx context.Context, req ScrubRequest, m method, local func(context.Context) (ScrubResult, error)) ([]ScrubReport, error) {
	if req.Group < 0 || req.Group >= n.cfg.Groups {
		return nil, fmt.Errorf("%w: group %d, cluster has %d groups", ErrBadRequest, req.Group, n.cfg.Groups)
	}
	var targets []NodeInfo
	for _, info := range n.dir.inGroup(req.Group) {
		if req.Node == "" || info.ID == req.Node || len(req.Node) >= 8 && len(info.ID) >= len(req.Node) && info.ID[:len(req.Node)] == req.Node {
			targets = append(targets, info)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: no node %q in group %d", ErrNotFound, req.Node, req.Group)
	}
	out := make([]ScrubReport, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res ScrubResult
			var err error
			if t.ID == n.info.ID {
				res, err = local(ctx)
			} else {
				err = n.callReplica(ctx, t.Addr, m, ScrubRequest{Group: req.Group, Node: t.ID}, &res)
			}
			res.Node, res.Group = t.ID, req.Group
			out[i] = ScrubReport{ScrubResult: res}
			if err != nil {
				out[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// callReplica is one scrub or repair call to a replica, tried again once
// on a new connection when the first ends without an answer: a pooled
// connection to a replica that restarted since fails at once, and both
// calls may be repeated.
func (n *Node) callReplica(ctx context.Context, addr string, m method, req ScrubRequest, res *ScrubResult) error {
	err := n.client.call(ctx, addr, m, req, res)
	var remote *remoteError
	if err == nil || errors.As(err, &remote) || errors.Is(err, ErrTimeout) || ctx.Err() != nil {
		return err
	}
	return n.client.call(ctx, addr, m, req, res)
}

// handleOnReplica answers mScrub and mRepair for this node.
func (n *Node) handleOnReplica(local func(context.Context) (ScrubResult, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, body []byte) (any, error) {
		var req ScrubRequest
		if err := unmarshal(body, &req); err != nil {
			return nil, err
		}
		if req.Node != n.info.ID || req.Group != n.group {
			return nil, fmt.Errorf("%w: this is node %s of group %d", ErrWrongNode, n.id.Short(), n.group)
		}
		return local(ctx)
	}
}
