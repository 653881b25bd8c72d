package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// ErrLogIncomplete: the raft log no longer holds an entry a rebuild
// needs (it was compacted into a snapshot that is missing or damaged), so
// the store must come from a healthy peer's snapshot instead.
var ErrLogIncomplete = errors.New("fsm: raft log does not hold every entry the rebuild needs")

// LogSource is the part of a raft log store a rebuild reads.
type LogSource interface {
	FirstIndex() (uint64, error)
	GetLog(index uint64, log *raft.Log) error
}

// rebuildBatch is how many log entries one bbolt transaction of a rebuild
// applies.
const rebuildBatch = 256

// Rebuild replaces the store with one rebuilt from a snapshot (nil: an
// empty store) and the raft log after it, up to the index upTo returns:
// the snapshot is verified in full first (VerifyFile); the entries are
// applied with the same Processor as Apply; the result is verified in
// full; only then does it replace the live file, which is kept as
// PATH.damaged. Most of the work runs while raft keeps applying to the
// old store; the last entries are applied while applies wait, so the new
// store holds everything the old one was given: up to upTo, or to the
// last entry raft handed to the FSM if that is further (raft's applied
// index lags what it handed over). upTo must never be more than the last
// committed index. On success the damage mark is cleared.
func (f *FSM) Rebuild(ctx context.Context, snapshot io.Reader, logs LogSource, upTo func() uint64) error {
	tmp := f.store.path + ".rebuild"
	os.Remove(tmp)
	if snapshot != nil {
		if err := writeFileSync(tmp, snapshot); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("fsm: rebuild: %w", err)
		}
		if _, err := MigrateFile(tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("fsm: rebuild: snapshot refused: %w", err)
		}
		if _, err := VerifyFile(tmp, f.store.group); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("fsm: rebuild: snapshot refused: %w", err)
		}
	}
	s, err := OpenStore(tmp, f.store.group, StoreOptions{NoSync: true})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: rebuild: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
			os.Remove(tmp)
		}
	}()
	if err := replay(s, logs, upTo()); err != nil {
		return err
	}
	if _, err := s.Verify(ctx, VerifyOptions{}); err != nil {
		return fmt.Errorf("fsm: rebuild: the rebuilt store does not verify: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	// Raft advances its applied index only after handing the FSM every
	// batch of a run (up to 256 entries each), so entries the old store
	// already holds may lie beyond upTo; raft never hands them again, so
	// the new store takes them too.
	if err := replay(s, logs, max(upTo(), f.handed)); err != nil {
		return err
	}
	if err := s.CheckRecent(snapshotWindow); err != nil {
		return fmt.Errorf("fsm: rebuild: the rebuilt store does not verify: %w", err)
	}
	if err := s.Sync(); err != nil {
		return fmt.Errorf("fsm: rebuild: %w", err)
	}
	s.Close()
	ok = true
	return f.swapIn(tmp)
}

// swapIn replaces the live file with the one at tmp; f.mu is held. The
// old file moves to PATH.damaged and lives on, like Restore's, for the
// snapshot transactions still reading it (see retire).
func (f *FSM) swapIn(tmp string) error {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	if err := os.Rename(f.store.path, f.store.path+".damaged"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("fsm: rebuild: %w", err)
	}
	if err := os.Rename(tmp, f.store.path); err != nil {
		return fmt.Errorf("fsm: rebuild: %w", err)
	}
	db, err := openDB(f.store.path, f.store.group, f.store.noSync)
	if err != nil {
		return fmt.Errorf("fsm: rebuild: reopen: %w", err)
	}
	if f.store.db != nil {
		f.retire(f.store.db)
	}
	f.store.db = db
	f.store.gen.Add(1)
	f.err = nil
	f.damage.Store(nil)
	f.logger.Info("chain store rebuilt", "path", f.store.path)
	return nil
}

// replay applies the log entries after s's applied index up to upTo.
func replay(s *Store, logs LogSource, upTo uint64) error {
	from, err := s.AppliedIndex()
	if err != nil {
		return fmt.Errorf("fsm: rebuild: %w", err)
	}
	from++
	if from > upTo {
		return nil
	}
	if first, err := logs.FirstIndex(); err != nil || first > from {
		return fmt.Errorf("%w: needs entries from %d, log starts at %d (%v)", ErrLogIncomplete, from, first, err)
	}
	proc := Processor{Group: s.group, OnDeploy: s.deployBegins}
	for from <= upTo {
		end := min(upTo, from+rebuildBatch-1)
		entries := make([]Entry, 0, end-from+1)
		for i := from; i <= end; i++ {
			var l raft.Log
			if err := logs.GetLog(i, &l); err != nil {
				return fmt.Errorf("%w: entry %d: %v", ErrLogIncomplete, i, err)
			}
			entries = append(entries, Entry{Index: l.Index, Command: l.Type == raft.LogCommand, Data: l.Data})
		}
		err := s.update(func(tx *bolt.Tx) error {
			_, err := proc.Apply(tx, entries)
			return err
		})
		if err != nil {
			return fmt.Errorf("fsm: rebuild: %w", err)
		}
		from = end + 1
	}
	return nil
}
