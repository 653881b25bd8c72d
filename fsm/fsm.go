package fsm

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// FSM adapts a Store and a Processor to raft.FSM and raft.BatchingFSM.
//
// Apply and ApplyBatch never panic. If the store itself fails (disk full,
// corrupt file) the FSM stops applying: every later entry is answered with
// the sticky error from Err (it wraps ErrStopped), the store's applied
// index stops moving and Snapshot refuses, so the replica never diverges
// and the raft log keeps every entry it skipped. Resume re-applies those
// entries in place once the cause is gone (space freed); a damaged file
// needs a rebuild or a restart instead.
//
// It stops the same way, after applying the entries before it, at an
// entry written by a newer version (the error wraps ErrNewerVersion too):
// every replica of this version stops at that index, Resume fails there
// again, and a restart onto a version that reads it resumes there.
type FSM struct {
	store  *Store
	proc   Processor
	logger hclog.Logger

	mu     sync.Mutex
	err    error  // sticky storage failure
	handed uint64 // the highest index raft handed to ApplyBatch

	damage atomic.Pointer[error] // set by MarkDamaged, cleared by Restore

	restores atomic.Uint64 // snapshots installed by Restore
}

// ErrStopped marks every answer of an FSM stopped by a storage failure (or
// by an entry of a newer version: the error then wraps ErrNewerVersion).
var ErrStopped = errors.New("fsm: store failed, applying stopped")

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns the FSM of the store's group. A nil logger discards logs.
func New(store *Store, logger hclog.Logger) *FSM {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &FSM{store: store, proc: Processor{Group: store.Group(), OnDeploy: store.deployBegins}, logger: logger.Named("fsm")}
}

// Store is the FSM's chain store, for reads.
func (f *FSM) Store() *Store { return f.store }

// Restores returns how many snapshots Restore has installed since New: on
// start when the store is rebuilt, and whenever the leader sends a
// snapshot because the log this replica needs was compacted away. Safe
// for concurrent use.
func (f *FSM) Restores() uint64 { return f.restores.Load() }

// Err returns the storage failure that stopped the FSM, if any.
func (f *FSM) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Apply applies one committed log entry and returns its *ApplyResult.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one bbolt transaction (one
// fsync) and returns one *ApplyResult per entry.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	entries := make([]Entry, len(logs))
	for i, l := range logs {
		entries[i] = Entry{Index: l.Index, Command: l.Type == raft.LogCommand, Data: l.Data}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handed = max(f.handed, logs[len(logs)-1].Index)
	var results []*ApplyResult
	var newer error
	err := f.err
	if err == nil {
		err = f.store.update(func(tx *bolt.Tx) error {
			var err error
			results, err = f.proc.Apply(tx, entries)
			if errors.Is(err, ErrNewerVersion) {
				newer = err // the entries before it are committed
				return nil
			}
			return err
		})
		switch {
		case err != nil:
			f.err = fmt.Errorf("%w: %w", ErrStopped, err)
			f.logger.Error("store failed; this replica stops applying", "first_index", logs[0].Index, "error", err)
			err = f.err
		case newer != nil:
			f.err = fmt.Errorf("%w: %w", ErrStopped, newer)
			f.logger.Error("log entry written by a newer version; this replica stops applying until it is upgraded", "error", newer)
		}
	}
	for i := range out {
		if err != nil {
			out[i] = &ApplyResult{Index: logs[i].Index, Err: err}
		} else {
			out[i] = results[i]
		}
	}
	return out
}

// Resume restarts an FSM that a storage failure stopped, in place and
// without raft's help: it applies, from logs and with the same Processor
// as ApplyBatch, every entry after the store's applied index up to the
// last one raft handed to ApplyBatch (raft does not hand them again), and
// only then clears Err, so the entries raft hands next follow on without
// a gap and the store ends as a replica that never stopped. Entries wait
// meanwhile. If the store still fails, or logs no longer hold an entry it
// needs (ErrLogIncomplete), the FSM stays stopped and the error says why;
// Resume may be tried again. A store marked damaged is not resumed: it
// needs a rebuild. Resume of a running FSM does nothing.
func (f *FSM) Resume(logs LogSource) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		return nil
	}
	if err := f.Damaged(); err != nil {
		return fmt.Errorf("fsm: resume refused: %w", err)
	}
	if err := replay(f.store, logs, f.handed); err != nil {
		return fmt.Errorf("fsm: resume: %w", err)
	}
	f.logger.Info("store writable again; applying resumed", "applied_index", f.handed, "was", f.err)
	f.err = nil
	return nil
}

// MarkDamaged records that a check found the store damaged (err wraps
// ErrDamaged). Until Restore installs another file, Snapshot refuses, so
// a damaged replica's chain is neither sent to a peer nor written as a
// snapshot. Safe for concurrent use.
func (f *FSM) MarkDamaged(err error) { f.damage.Store(&err) }

// Damaged returns the damage MarkDamaged recorded, or nil.
func (f *FSM) Damaged() error {
	if p := f.damage.Load(); p != nil {
		return *p
	}
	return nil
}

// snapshotWindow is how many of the newest blocks a snapshot checks
// (CheckRecent) before it is written.
const snapshotWindow = 16

// Snapshot captures the store as of now. A store marked damaged is
// refused. A stopped FSM refuses too: raft would label the snapshot with
// the last index it handed over, which the store does not hold, and
// compact away the entries Resume needs.
//
// A durable store (every commit fsynced) opened with ReferenceSnapshots
// is its own snapshot: the
// snapshot is a reference recording the applied index and a fingerprint
// of the head, O(1) whatever the chain's size, after the newest blocks
// are checked; open it through SnapshotStore, which streams the live
// store in its place. Any other store is copied: Persist
// streams a consistent copy of the bbolt file while Apply continues,
// after checking the newest blocks of the copy it writes; a full check
// is the receiver's (Restore).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Damaged(); err != nil {
		return nil, fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	if f.store.refs {
		return f.refSnapshot()
	}
	return f.FullSnapshot()
}

// refSnapshot reads the reference of the store's current state.
func (f *FSM) refSnapshot() (raft.FSMSnapshot, error) {
	s := &refSnapshot{store: f.store}
	err := f.store.view(func(tx *bolt.Tx) (err error) {
		defer guard(&err)
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		if err := checkRecent(tx, f.store.group, snapshotWindow); err != nil {
			return err
		}
		s.ref, err = refOf(tx, f.store.group)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	return s, nil
}

// FullSnapshot captures a copy of the store as of now, whatever its
// durability: Persist streams a consistent copy of the bbolt file (one
// read transaction) while Apply continues. It is what a backup or a peer
// needs; raft's own snapshots come from Snapshot.
func (f *FSM) FullSnapshot() (raft.FSMSnapshot, error) {
	if err := f.Damaged(); err != nil {
		return nil, fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	tx, err := f.store.begin()
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	// The open transaction keeps its file: Restore installs a new one
	// beside it and closes this one only when the transaction ends (raft
	// may restore while a snapshot waits to be persisted).
	return &snapshot{tx: tx, group: f.store.group}, nil
}

type snapshot struct {
	tx    *bolt.Tx
	group uint32
	once  sync.Once
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.check(); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) check() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return checkRecent(s.tx, s.group, snapshotWindow)
}

func (s *snapshot) Release() {
	s.once.Do(func() { _ = s.tx.Rollback() })
}

// Restore replaces the store with a snapshot. The snapshot is written to a
// temporary file and verified in full (VerifyFile) before it replaces the
// live file, so a bad or damaged snapshot leaves the current store as it
// was. Installing a snapshot clears MarkDamaged.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.store.path + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := refusedRef(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if migrated, err := MigrateFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: snapshot refused: %w", err)
	} else if migrated {
		f.logger.Info("snapshot of an older chain store format converted", "format", FormatVersion)
	}
	if err := failpoint("restore-after-copy"); err != nil {
		return err
	}
	check, err := openDB(tmp, f.store.group, true)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: snapshot is not a store of group %d: %w", f.store.group, err)
	}
	check.Close()
	if _, err := VerifyFile(tmp, f.store.group); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: snapshot refused: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	if err := failpoint("restore-before-swap"); err != nil {
		return err
	}
	// The new file replaces the old one's name; the old file lives on for
	// the snapshots still reading it (see retire).
	if err := os.Rename(tmp, f.store.path); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := syncDir(filepath.Dir(f.store.path)); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := failpoint("restore-after-swap"); err != nil {
		return err
	}
	db, err := openDB(f.store.path, f.store.group, f.store.noSync)
	if err != nil {
		return fmt.Errorf("fsm: restore: reopen: %w", err)
	}
	if f.store.db != nil {
		f.retire(f.store.db)
	}
	f.store.db = db
	f.store.gen.Add(1)
	f.err = nil
	f.damage.Store(nil)
	f.restores.Add(1)
	f.logger.Info("restored from snapshot", "path", f.store.path)
	return nil
}

// retire closes a replaced store file once the snapshots still reading it
// are released (bbolt's Close waits for open read transactions). It does
// not wait itself: raft may be holding such a snapshot until Restore
// returns.
func (f *FSM) retire(db *bolt.DB) {
	go func() {
		if err := db.Close(); err != nil {
			f.logger.Warn("closing the store file a restore replaced", "error", err)
		}
	}()
}

// refusedRef returns ErrSnapshotRef if the file at path is a reference
// snapshot rather than a copy of a store.
func refusedRef(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	if isRef, err := IsReference(fh); err != nil || isRef {
		return cmp.Or(err, ErrSnapshotRef)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeFileSync(path string, r io.Reader) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fh, r); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
