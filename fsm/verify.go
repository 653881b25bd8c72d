package fsm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime/debug"

	"qledger/chain"
)

// StoreFile is the name of a node's chain store in its data directory.
const StoreFile = "chain.db"

// ErrHeadMismatch is a chain store whose recorded head is not its chain's
// last block.
var ErrHeadMismatch = errors.New("fsm: recorded head is not the chain's last block")

// FindStores returns the chain stores (StoreFile) under dir: a node's
// data directory, or an embedded cluster's with one directory per node.
func FindStores(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == StoreFile {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fsm: %w", err)
	}
	return paths, nil
}

// VerifyStoreFile checks one stopped node's chain store offline: its
// bbolt pages (Store.CheckPages), the whole chain (chain.VerifyChain),
// its indexes (as Store.Verify checks them), and that the head the store
// records is the chain's last block. The node must be stopped: the store is opened
// read-only and bbolt refuses a file another process holds.
func VerifyStoreFile(path string) (rep chain.VerifyReport, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s, err := OpenStoreReadOnly(path)
	if errors.Is(err, ErrFormat) {
		return chain.VerifyReport{}, err
	}
	if err != nil {
		return chain.VerifyReport{}, fmt.Errorf("%w (is the node still running?)", err)
	}
	defer s.Close()
	if err := s.CheckPages(); err != nil {
		return chain.VerifyReport{}, err
	}
	blocks, ierr := s.AllBlocks()
	rep, err = chain.VerifyChain(s.Group(), blocks)
	if e := ierr(); e != nil {
		return rep, e
	}
	if err != nil {
		return rep, err
	}
	head, ok, err := s.Head()
	if err != nil {
		return rep, err
	}
	if ok != (rep.Blocks > 0) || ok && head != rep.Head {
		return rep, ErrHeadMismatch
	}
	if ok {
		if err := s.checkIndexes(context.Background(), head.Height, VerifyOptions{Chunk: 256}); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// VerifyFile verifies a store file that no process holds open — a
// snapshot about to be installed, sent or saved as a backup — in full:
// its bbolt pages (Store.CheckPages), then its chain (Store.Verify), and
// that it belongs to group. Damage is an error
// wrapping ErrDamaged (see DamageOf).
func VerifyFile(path string, group uint32) (rep chain.VerifyReport, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s, err := OpenStoreReadOnly(path)
	if err != nil {
		return chain.VerifyReport{}, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	defer s.Close()
	if s.Group() != group {
		return chain.VerifyReport{}, fmt.Errorf("fsm: %s is a store of group %d, not %d", path, s.Group(), group)
	}
	if err := s.CheckPages(); err != nil {
		return chain.VerifyReport{}, err
	}
	return s.Verify(context.Background(), VerifyOptions{})
}

// CheckFile is the check a node runs on its stopped store before it
// opens it for writing: the file opens read-only, belongs to group, its
// bbolt pages pass CheckPages (one read of the file) and its newest
// window blocks pass CheckRecent. It returns the store's
// applied raft index. Nothing is written; bbolt panics and memory faults
// are reported as damage.
func CheckFile(path string, group uint32, window int) (applied uint64, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s, err := OpenStoreReadOnly(path)
	if errors.Is(err, ErrFormat) {
		return 0, err // not damage: a rebuild would not help
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	defer s.Close()
	if s.Group() != group {
		return 0, fmt.Errorf("fsm: %s is a store of group %d, not %d", path, s.Group(), group)
	}
	if err := s.CheckPages(); err != nil {
		return 0, err
	}
	if err := s.CheckRecent(window); err != nil {
		return 0, err
	}
	applied, err = s.AppliedIndex()
	if err != nil {
		return 0, damaged(0, "%v", err)
	}
	return applied, nil
}
