package fsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// ErrDamaged marks a chain store that failed a check: its chain does not
// verify (a *chain.VerifyError in the chain says where and what), its
// recorded head, log frontier, Merkle nodes or transaction index disagree
// with its blocks, or bbolt itself could not read it.
var ErrDamaged = errors.New("fsm: chain store damaged")

// ErrStoreReplaced ends a verification during which the store was
// replaced by a snapshot; its result says nothing about either file.
var ErrStoreReplaced = errors.New("fsm: store replaced during verification")

// Damage says what a check found: the first bad height (0 when the damage
// is not tied to a block, e.g. an unreadable file) and what is wrong.
type Damage struct {
	Height uint64
	What   string
}

// DamageOf returns what a check's error found, or ok=false when err does
// not report damage (nil, a closed store, a cancelled context, a store
// replaced during the check).
func DamageOf(err error) (Damage, bool) {
	if err == nil || !errors.Is(err, ErrDamaged) {
		return Damage{}, false
	}
	if ve, ok := chain.IsVerifyError(err); ok {
		return Damage{Height: ve.Height, What: fmt.Sprintf("%v: %s", ve.Err, ve.Detail)}, true
	}
	var de *damageError
	if errors.As(err, &de) {
		return Damage{Height: de.height, What: de.what}, true
	}
	return Damage{What: err.Error()}, true
}

type damageError struct {
	height uint64
	what   string
}

func (e *damageError) Error() string {
	if e.height == 0 {
		return fmt.Sprintf("%v: %s", ErrDamaged, e.what)
	}
	return fmt.Sprintf("%v: height %d: %s", ErrDamaged, e.height, e.what)
}

func (e *damageError) Is(target error) bool { return target == ErrDamaged }

func damaged(height uint64, format string, args ...any) error {
	return &damageError{height: height, what: fmt.Sprintf(format, args...)}
}

// asDamage marks a chain verification failure as damage.
func asDamage(err error) error {
	if err == nil || errors.Is(err, ErrDamaged) {
		return err
	}
	if _, ok := chain.IsVerifyError(err); ok {
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return err
}

// guard turns a panic or memory fault inside bbolt (a torn or overwritten
// page makes it index past a page or assert) into damage, so a damaged
// file is reported instead of crashing the node.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = damaged(0, "bbolt could not read the file: %v", r)
	}
}

// CheckRecent verifies, in one consistent read, the newest window blocks
// (at least the head) in full — each decodes, is stored under its height,
// links to the block below it, its transactions hash to its root, its log
// size follows and its log root equals the root the stored Merkle nodes
// give, the leaf nodes are its transactions and the transaction index
// points at them — and that the recorded head and log frontier are the
// last block's. Its cost is the window's blocks plus O(log n) node reads
// per block; it is what a node runs before it serves. Damage is returned
// as an error wrapping ErrDamaged (see DamageOf).
func (s *Store) CheckRecent(window int) (err error) {
	if window < 1 {
		window = 1
	}
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.view(func(tx *bolt.Tx) error { return checkRecent(tx, s.group, window) })
}

// checkRecent is CheckRecent inside a read transaction.
func checkRecent(tx *bolt.Tx, group uint32, window int) error {
	st, err := readState(tx)
	if err != nil {
		return damaged(0, "%v", err)
	}
	blocks := tx.Bucket(bucketBlocks)
	last, _ := blocks.Cursor().Last()
	if st.head == nil {
		if last != nil {
			return damaged(0, "no head recorded, but blocks are stored")
		}
		if st.log.Size() != 0 {
			return damaged(0, "empty chain with a log of %d transactions", st.log.Size())
		}
		return nil
	}
	top := st.head.Height
	if len(last) != 8 || binary.BigEndian.Uint64(last) != top {
		return damaged(top, "recorded head is height %d, last stored block key is %x", top, last)
	}
	from := uint64(1)
	if top > uint64(window) {
		from = top - uint64(window) + 1
	}
	var prev *chain.Header
	if from > 1 {
		b, err := decodeAt(blocks, from-1)
		if err != nil {
			return err
		}
		prev = &b.Header
	}
	c := recentChecker{tx: tx, group: group}
	for h := from; h <= top; h++ {
		b, err := decodeAt(blocks, h)
		if err != nil {
			return err
		}
		if err := c.check(h, prev, &b); err != nil {
			return err
		}
		prev = &b.Header
	}
	if *prev != *st.head {
		return damaged(top, "recorded head differs from the stored block")
	}
	if st.log.Size() != prev.LogSize || st.log.Root() != prev.LogRoot {
		return damaged(top, "log frontier (size %d) differs from the head's log (size %d)", st.log.Size(), prev.LogSize)
	}
	return nil
}

func decodeAt(blocks *bolt.Bucket, h uint64) (chain.Block, error) {
	raw := blocks.Get(heightKey(h))
	if raw == nil {
		return chain.Block{}, fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: chain.ErrHeightGap, Detail: "block missing"})
	}
	b, err := chain.DecodeBlock(raw)
	if err != nil {
		return chain.Block{}, fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: chain.ErrDecoding, Detail: err.Error()})
	}
	return b, nil
}

// recentChecker checks one block against the one below it and against the
// store's Merkle nodes and transaction index.
type recentChecker struct {
	tx    *bolt.Tx
	group uint32
}

func (c recentChecker) check(h uint64, prev *chain.Header, b *chain.Block) error {
	fail := func(err error, format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: err, Detail: fmt.Sprintf(format, args...)})
	}
	hd := &b.Header
	if hd.Group != c.group {
		return fail(chain.ErrWrongGroup, "header says group %d, store is group %d", hd.Group, c.group)
	}
	if hd.Height != h {
		return fail(chain.ErrHeightGap, "stored at height %d, header says %d", h, hd.Height)
	}
	var wantPrev chain.Hash
	var base uint64
	if prev != nil {
		wantPrev, base = prev.Hash(), prev.LogSize
		if hd.Timestamp < prev.Timestamp {
			return fail(chain.ErrTimestamp, "timestamp %d before previous %d", hd.Timestamp, prev.Timestamp)
		}
	}
	if hd.PrevHash != wantPrev {
		return fail(chain.ErrHashLink, "previous hash %s, previous header hashes to %s", hd.PrevHash, wantPrev)
	}
	leaves := b.LeafHashes()
	if root := chain.RootFromLeaves(leaves); root != hd.TxRoot || uint32(len(leaves)) != hd.TxCount {
		return fail(chain.ErrTxRoot, "header says %s, transactions hash to %s", hd.TxRoot, root)
	}
	if hd.LogSize != base+uint64(len(leaves)) {
		return fail(chain.ErrLogRoot, "log size %d after %d plus %d transactions", hd.LogSize, base, len(leaves))
	}
	if err := c.leaves(h, base, b, leaves); err != nil {
		return err
	}
	if root, err := chain.RootAt(hd.LogSize, newTileReader(c.tx)); err != nil || root != hd.LogRoot {
		return fail(chain.ErrLogRoot, "header says root %s, stored Merkle nodes give %s (%v)", hd.LogRoot, root, err)
	}
	return nil
}

// leaves checks that block h's leaves, from leaf index base, are the
// stored leaf nodes and that the transaction index points at each of its
// transactions.
func (c recentChecker) leaves(h, base uint64, b *chain.Block, leaves []chain.Hash) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: chain.ErrLogRoot, Detail: fmt.Sprintf(format, args...)})
	}
	nr := newTileReader(c.tx)
	txs := newTxIndex(c.tx)
	for i, l := range leaves {
		if got, err := nr.Node(0, base+uint64(i)); err != nil || got != l {
			return fail("stored leaf %d is not transaction %d's", base+uint64(i), i)
		}
		if id := chain.TxID(b.Txs[i]); !txs.points(id, base+uint64(i), h, uint32(i)) {
			return fail("transaction index entry of %s does not point at position %d", id, i)
		}
	}
	return nil
}

// VerifyOptions tune a full verification.
type VerifyOptions struct {
	// Rate caps the blocks read per second (0: no cap), so a scrub does
	// not starve the node's reads and applies.
	Rate int
	// Chunk is how many blocks one read transaction reads (default 256):
	// a long read transaction would hold bbolt's mmap and stall writers.
	Chunk int
	// Progress, if set, is called after each chunk with the heights
	// verified so far and the height being verified up to.
	Progress func(done, total uint64)
}

// Verify checks the whole chain up to the head recorded when it starts
// (chain.VerifyChain: every block, link, transaction root and log root
// from height 1), then every block against the store's indexes — Merkle
// leaf nodes, the log root the stored nodes give, the transaction index
// (checkIndexes) — then the newest block against the recorded head and
// log frontier (CheckRecent). It reads in chunks of short read transactions and
// sleeps to keep to opts.Rate, so it is safe to run beside a live node;
// blocks below the head never change, so the chunks read one chain. It
// returns ErrStoreReplaced if a snapshot replaced the store meanwhile,
// the context's error if cancelled, and damage as an error wrapping
// ErrDamaged (see DamageOf).
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (rep chain.VerifyReport, err error) {
	if opts.Chunk <= 0 {
		opts.Chunk = 256
	}
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	gen := s.generation()
	head, ok, err := s.Head()
	if err != nil {
		return rep, damaged(0, "%v", err)
	}
	if !ok {
		return rep, s.CheckRecent(1)
	}
	var ierr error
	blocks := s.chunks(ctx, head.Height, opts, &ierr)
	rep, err = chain.VerifyChain(s.group, blocks)
	if s.generation() != gen {
		return rep, ErrStoreReplaced
	}
	if ierr != nil {
		return rep, ierr
	}
	if err != nil {
		return rep, asDamage(err)
	}
	if rep.Head != head {
		return rep, damaged(head.Height, "recorded head differs from the stored block at its height")
	}
	if err := s.checkIndexes(ctx, head.Height, opts); err != nil {
		if s.generation() != gen {
			return rep, ErrStoreReplaced
		}
		return rep, err
	}
	if err := s.CheckRecent(1); err != nil {
		return rep, err
	}
	if s.generation() != gen {
		return rep, ErrStoreReplaced
	}
	return rep, nil
}

// checkIndexes checks every block from height 1 to top against the
// store's indexes: its leaves are the stored Merkle leaf nodes, the
// interior nodes its leaves complete are the hashes of their children,
// and the transaction index points at each of its transactions. With the
// chain verified (every block's log root from its leaves), that makes
// every root and inclusion proof the stored nodes give the chain's. It
// reads opts.Chunk blocks per read transaction and keeps to opts.Rate.
// The blocks must be verified first: a header's log size and
// transaction count are trusted here.
func (s *Store) checkIndexes(ctx context.Context, top uint64, opts VerifyOptions) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	start := time.Now()
	for next := uint64(1); next <= top; {
		end := min(top, next+uint64(opts.Chunk)-1)
		err := s.view(func(tx *bolt.Tx) error {
			c := recentChecker{tx: tx, group: s.group}
			blocks := tx.Bucket(bucketBlocks)
			for h := next; h <= end; h++ {
				b, err := decodeAt(blocks, h)
				if err != nil {
					return err
				}
				base := b.Header.LogSize - uint64(b.Header.TxCount)
				if err := c.leaves(h, base, &b, b.LeafHashes()); err != nil {
					return err
				}
				if err := checkInterior(tx, h, base, b.Header.LogSize); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := pace(ctx, start, end, opts.Rate); err != nil {
			return err
		}
		next = end + 1
	}
	return nil
}

// checkInterior checks the stored Merkle hashes above the leaves that
// the leaves from..to-1 (block h's) complete: each hash a tile level
// above 0 stores is the root of the full tile below it. Over a whole
// chain every stored hash above the leaves is checked once, when its
// last leaf is; the heights between tile levels are not stored but
// computed from these.
func checkInterior(tx *bolt.Tx, h, from, to uint64) error {
	nr := newTileReader(tx)
	for j := from; j < to; j++ {
		for level, span := uint8(1), uint64(tileWidth); level < 8 && (j+1)%span == 0; level, span = level+1, span*tileWidth {
			i := (j+1)/span - 1
			below, berr := nr.tileRoot(tileID{level: level - 1, index: i})
			n, nerr := nr.Node(level*tileHeight, i)
			if err := errors.Join(berr, nerr); err != nil || n != below {
				return fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: chain.ErrLogRoot,
					Detail: fmt.Sprintf("stored Merkle node (%d,%d) is not the root of the tile below it (%v)", level*tileHeight, i, err)})
			}
		}
	}
	return nil
}

// chunks yields the blocks from height 1 to top, reading opts.Chunk of
// them per read transaction and keeping to opts.Rate. A read error or
// cancellation ends the sequence and is left in *ierr.
func (s *Store) chunks(ctx context.Context, top uint64, opts VerifyOptions, ierr *error) iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		start := time.Now()
		var done uint64
		for next := uint64(1); next <= top; {
			var keys []uint64
			var vals [][]byte
			err := s.view(func(tx *bolt.Tx) error {
				c := tx.Bucket(bucketBlocks).Cursor()
				for k, v := c.Seek(heightKey(next)); k != nil && len(keys) < opts.Chunk; k, v = c.Next() {
					if len(k) != 8 {
						return damaged(next, "corrupt block key %x", k)
					}
					h := binary.BigEndian.Uint64(k)
					if h > top {
						break
					}
					keys = append(keys, h)
					vals = append(vals, append([]byte(nil), v...))
				}
				return nil
			})
			if err != nil {
				*ierr = err
				return
			}
			if len(keys) == 0 {
				return // VerifyChain's report ends short of the head
			}
			for i, k := range keys {
				if !yield(k, vals[i]) {
					return
				}
			}
			next = keys[len(keys)-1] + 1
			done += uint64(len(keys))
			if opts.Progress != nil {
				opts.Progress(next-1, top)
			}
			if err := pace(ctx, start, done, opts.Rate); err != nil {
				*ierr = err
				return
			}
		}
	}
}

// pace waits until done blocks read since start keep to rate per second.
func pace(ctx context.Context, start time.Time, done uint64, rate int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rate <= 0 {
		return nil
	}
	due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
