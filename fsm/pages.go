package fsm

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// maxPageErrors is how many of bbolt's consistency errors a page check
// reports.
const maxPageErrors = 3

// CheckPages checks the bbolt structure of the store's file, which no
// writer may be using (a stopped node's store, a snapshot or a backup):
// the file holds every page bbolt's metadata says it uses (a file cut
// short is found here, before any read past its end); every bucket's
// every key and value is read (a garbage branch or leaf page panics or
// faults inside bbolt, which is reported); then bbolt's own check
// (Tx.Check) finds pages referenced twice, freed and still in use, freed
// twice, or neither reachable nor free. Its cost is one read of every
// page of the file. Damage is an error wrapping ErrDamaged with height
// 0 (see DamageOf).
func (s *Store) CheckPages() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.view(func(tx *bolt.Tx) error { return checkPages(tx, s.path) })
}

func checkPages(tx *bolt.Tx, path string) error {
	if err := checkReach(tx, path); err != nil {
		return err
	}
	return checkFreelist(tx)
}

// CheckPagesLive is CheckPages for the store a node is writing (the
// periodic scrub). The size check and the walk of every bucket run in
// one read transaction, which holds off bbolt's remapping of a growing
// file until it ends. bbolt's Tx.Check reads the freelist that writers
// change, so it is not safe in a read transaction beside them (bbolt's
// doc of Tx.Check; the freelist is a plain map); it runs in a write
// transaction that is rolled back, so applies wait for it.
func (s *Store) CheckPagesLive() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if err := s.view(func(tx *bolt.Tx) error { return checkReach(tx, s.path) }); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("fsm: %w", err)
	}
	defer tx.Rollback()
	return checkFreelist(tx)
}

// checkReach checks that the file holds every page tx reaches and walks
// every bucket (walkBuckets).
func checkReach(tx *bolt.Tx, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("fsm: %w", err)
	}
	if st.Size() < tx.Size() {
		return damaged(0, "bbolt: the file is %d bytes, its pages reach %d: cut short", st.Size(), tx.Size())
	}
	return walkBuckets(tx)
}

// checkFreelist is bbolt's own check (Tx.Check): pages referenced
// twice, freed and still in use, freed twice, or neither reachable nor
// free.
func checkFreelist(tx *bolt.Tx) error {
	var errs []string
	for e := range tx.Check() {
		if len(errs) < maxPageErrors {
			errs = append(errs, e.Error())
		}
	}
	if len(errs) > 0 {
		return damaged(0, "bbolt: %v", errs)
	}
	return nil
}

// walkBuckets reads every key and value of every bucket, nested ones
// too, so every page a bucket reaches is touched in this goroutine
// (where faults are recovered) before Tx.Check walks them in its own,
// and checks that each bucket's keys increase: a page written over
// another breaks that. (bbolt rebuilds the freelist of a read-only store
// kept without one by walking every page, and panics on such damage in
// a way the race detector reports as a race inside bbolt.)
func walkBuckets(tx *bolt.Tx) error {
	var walk func(b *bolt.Bucket, depth int) error
	walk = func(b *bolt.Bucket, depth int) error {
		if depth > 8 {
			return damaged(0, "bbolt: buckets nested %d deep", depth)
		}
		var prev []byte
		return b.ForEach(func(k, v []byte) error {
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return damaged(0, "bbolt: key %x after %x: pages out of order", k, prev)
			}
			prev = append(prev[:0], k...)
			if v != nil {
				return nil
			}
			nb := b.Bucket(k)
			if nb == nil {
				return damaged(0, "bbolt: key %x is neither a value nor a bucket", k)
			}
			return walk(nb, depth+1)
		})
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b, 1) })
}
