package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// The transaction index maps a transaction ID to where the transaction
// sits. It is partitioned into epochs of 2^epochBits consecutive leaves
// of the group's log, so that appending touches only the newest epoch's
// few pages instead of random pages of one tree that grows with the
// chain (docs/DESIGN.md, "Transaction index"):
//
//   - txepochs: epoch (4 bytes, big-endian) | the ID's first txKeyLen
//     bytes -> the block height and the position in the block as two
//     uvarints (4–6 bytes for any realistic chain). The leaf index
//     follows from the block's header (its log size less its
//     transaction count, plus the position).
//   - txfilter: epoch -> a blocked Bloom filter of that epoch's short
//     keys (filter.go), written when the log completes the epoch
//     ("sealing" it); an epoch is never written again after that.
//   - txgroups: group -> a filter of the short keys of its 2^groupBits
//     epochs, written when the log completes its last epoch, so that a
//     lookup tests one filter per group instead of one per epoch.
//   - txlong: a full 32-byte ID -> the same value, for an ID whose short
//     key another transaction of its epoch holds (about n²/2^65 pairs
//     among n transactions of an epoch).
//   - txidx: format 2's unpartitioned index (short key -> the same
//     value), kept read-only in a store converted from format 2 or 1 and
//     absent from a store created as format 3.
//
// A lookup tries, newest first: the epochs without a filter (the live one,
// and one the current write has just completed); the sealed epochs of the
// group not yet sealed whose filter may hold the key; the epochs of each
// sealed group whose filter, and then the epoch's, may hold it; then
// txidx. Every entry found is checked by hashing the transaction it points
// at, so a shared key never returns the wrong transaction. Only if some
// short entry held another transaction does it read txlong. Every replica
// computes the same answers, whatever its layout: epochs, seals and
// filters follow from the log alone.

// txKeyLen is the length of a short key. A variable so that tests can
// shorten it to force collisions; it is part of the on-disk format.
var txKeyLen = 8

// epochBits sets the epoch size, 2^epochBits leaves, and groupBits the
// group size, 2^groupBits epochs. Variables so that tests can cross
// epochs and groups with few transactions; they are part of the on-disk
// format.
var (
	epochBits = 12
	groupBits = 4
)

func encodeTxPos(height uint64, pos uint32) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(make([]byte, 0, 12), height), uint64(pos))
}

func decodeTxPos(v []byte) (height uint64, pos uint32, err error) {
	height, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, 0, fmt.Errorf("fsm: corrupt tx index entry %x", v)
	}
	p, m := binary.Uvarint(v[n:])
	if m <= 0 || n+m != len(v) || p > chain.MaxBlockTxs {
		return 0, 0, fmt.Errorf("fsm: corrupt tx index entry %x", v)
	}
	return height, uint32(p), nil
}

// epochOf is the epoch of leaf index leaf.
func epochOf(leaf uint64) uint32 { return uint32(leaf >> epochBits) }

// epochKey is the 4-byte key of epoch (or group) e.
func epochKey(e uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4+txKeyLen), e) }

// shortKey is id's key in epoch e.
func shortKey(e uint32, id chain.Hash) []byte { return append(epochKey(e), id[:txKeyLen]...) }

// txIndex is the transaction index inside one bbolt transaction. The
// buckets a format-2 store lacks (epochs, filters, groups) and the one a
// format-3 store may lack (legacy) are nil; a nil bucket holds nothing.
type txIndex struct {
	epochs, filters, groups, legacy, long, blocks *bolt.Bucket
	span                                          *epochSpan
}

// epochSpan is what every lookup needs to know of the epochs, read once
// per txIndex and kept up to date by put and seal.
type epochSpan struct {
	known bool
	// live is set if an epoch without a filter holds an entry; low and
	// top are the oldest and newest such.
	live     bool
	low, top uint32
	// sealed are the filters of the sealed epochs of no sealed group,
	// and groups the sealed groups', newest first. Their bytes are
	// bbolt's, valid for the transaction's life.
	sealed, groups []sealedFilter
}

type sealedFilter struct {
	n uint32 // epoch or group number
	f filter
}

func newTxIndex(tx *bolt.Tx) txIndex {
	return txIndex{
		epochs:  tx.Bucket(bucketTxEpochs),
		filters: tx.Bucket(bucketTxFilter),
		groups:  tx.Bucket(bucketTxGroups),
		legacy:  tx.Bucket(bucketTxIdx),
		long:    tx.Bucket(bucketTxLong),
		blocks:  tx.Bucket(bucketBlocks),
		span:    &epochSpan{},
	}
}

// partitioned reports whether the store has epochs (format 3).
func (x txIndex) partitioned() bool { return x.epochs != nil && x.filters != nil && x.groups != nil }

// get finds transaction id: its location and its block, ok=false if it is
// not indexed. An entry that points at no such transaction is an error.
func (x txIndex) get(id chain.Hash) (loc TxLocation, blk *chain.Block, ok bool, err error) {
	shared := false // a short entry held another transaction
	for v := range x.shorts(id) {
		if loc, blk, err = x.resolve(v); err != nil {
			return loc, nil, false, err
		}
		if chain.TxID(blk.Txs[loc.Pos]) == id {
			return loc, blk, true, nil
		}
		shared = true
	}
	if !shared {
		return loc, nil, false, nil
	}
	v := x.long.Get(id[:])
	if v == nil {
		return loc, nil, false, nil // other transactions hold the short keys
	}
	if loc, blk, err = x.resolve(v); err != nil {
		return loc, nil, false, err
	}
	if chain.TxID(blk.Txs[loc.Pos]) != id {
		return loc, nil, false, fmt.Errorf("fsm: tx index entry of %s points at another transaction", id)
	}
	return loc, blk, true, nil
}

// shorts yields the short entries a lookup of id must try, newest first
// (see the top of this file). A filter that is not well formed is passed
// over as one that may hold the key, and an epoch of a sealed group
// without a filter is probed: the lookup stays exact, and a check
// reports the filter (points).
func (x txIndex) shorts(id chain.Hash) iter.Seq[[]byte] {
	key := id[:txKeyLen]
	return func(yield func([]byte) bool) {
		if x.partitioned() {
			sp := x.load()
			probe := func(e uint32) bool {
				v := x.epochs.Get(shortKey(e, id))
				return v == nil || yield(v)
			}
			for e := sp.top; sp.live; e-- {
				if !probe(e) {
					return
				}
				if e == sp.low {
					break
				}
			}
			for _, s := range sp.sealed {
				if s.f.mayHold(key) && !probe(s.n) {
					return
				}
			}
			for _, g := range sp.groups {
				if !g.f.mayHold(key) {
					continue
				}
				first := g.n << groupBits
				for e := first + 1<<groupBits - 1; ; e-- {
					if f := x.filters.Get(epochKey(e)); (f == nil || filter(f).mayHold(key)) && !probe(e) {
						return
					}
					if e == first {
						break
					}
				}
			}
		}
		if x.legacy != nil {
			if v := x.legacy.Get(key); v != nil {
				yield(v)
			}
		}
	}
}

// load reads the epoch span unless it is known: the filters of the
// sealed groups and of the sealed epochs after them, and the unsealed
// epochs that hold entries — the live one, and one the current write has
// just completed; none in a store converted from format 2 before its
// first append.
func (x txIndex) load() *epochSpan {
	sp := x.span
	if sp.known {
		return sp
	}
	*sp = epochSpan{known: true}
	gc := x.groups.Cursor()
	for k, f := gc.Last(); k != nil; k, f = gc.Prev() {
		if len(k) == 4 {
			sp.groups = append(sp.groups, sealedFilter{n: binary.BigEndian.Uint32(k), f: filter(f)})
		}
	}
	var grouped uint32 // the first epoch of no sealed group
	if len(sp.groups) > 0 {
		grouped = (sp.groups[0].n + 1) << groupBits
	}
	next := grouped // the first unsealed epoch
	fc := x.filters.Cursor()
	for k, f := fc.Last(); len(k) == 4 && binary.BigEndian.Uint32(k) >= grouped; k, f = fc.Prev() {
		e := binary.BigEndian.Uint32(k)
		next = max(next, e+1)
		sp.sealed = append(sp.sealed, sealedFilter{n: e, f: filter(f)})
	}
	ec := x.epochs.Cursor()
	if k, _ := ec.Seek(epochKey(next)); len(k) >= 4 {
		last, _ := ec.Last()
		sp.live, sp.low, sp.top = true, binary.BigEndian.Uint32(k), binary.BigEndian.Uint32(last)
	}
	return sp
}

// resolve reads the block an index entry points at.
func (x txIndex) resolve(v []byte) (TxLocation, *chain.Block, error) {
	h, pos, err := decodeTxPos(v)
	if err != nil {
		return TxLocation{}, nil, err
	}
	raw := x.blocks.Get(heightKey(h))
	if raw == nil {
		return TxLocation{}, nil, fmt.Errorf("fsm: block %d of a tx index entry missing", h)
	}
	b, err := chain.DecodeBlock(raw)
	if err != nil {
		return TxLocation{}, nil, fmt.Errorf("fsm: block %d: %w", h, err)
	}
	if pos >= b.Header.TxCount || int(pos) >= len(b.Txs) || b.Header.LogSize < uint64(b.Header.TxCount) {
		return TxLocation{}, nil, fmt.Errorf("fsm: tx index entry position %d beyond block %d", pos, h)
	}
	return TxLocation{Height: h, Pos: pos, Index: b.Header.LogSize - uint64(b.Header.TxCount) + uint64(pos)}, &b, nil
}

// put indexes transaction id, which must not be indexed yet, at leaf
// index leaf, (height, pos), in the epoch of leaf, which must not be
// sealed.
func (x txIndex) put(id chain.Hash, leaf, height uint64, pos uint32) error {
	v := encodeTxPos(height, pos)
	e := epochOf(leaf)
	k := shortKey(e, id)
	if x.epochs.Get(k) != nil {
		return x.long.Put(id[:], v)
	}
	if err := x.epochs.Put(k, v); err != nil {
		return err
	}
	if sp := x.span; sp.known {
		if !sp.live {
			sp.live, sp.low, sp.top = true, e, e
		}
		sp.low, sp.top = min(sp.low, e), max(sp.top, e)
	}
	return nil
}

// seal writes the filter of every epoch the log completed in growing
// from size from to size to, and of every group whose last epoch that
// was. A filter holds short keys only: an ID under its full key is
// looked up after its epoch's short entry, which holds another
// transaction, was tried.
func (x txIndex) seal(from, to uint64) error {
	if epochOf(from) == epochOf(to) {
		return nil
	}
	x.filters.FillPercent = appendFill // sealed in order
	x.groups.FillPercent = appendFill
	for e := epochOf(from); e < epochOf(to); e++ {
		if err := x.filters.Put(epochKey(e), x.filterOf(e, e+1, 1<<epochBits)); err != nil {
			return err
		}
		if g := e >> groupBits; (e+1)&(1<<groupBits-1) == 0 {
			if err := x.groups.Put(epochKey(g), x.filterOf(g<<groupBits, e+1, 1<<(epochBits+groupBits))); err != nil {
				return err
			}
		}
	}
	*x.span = epochSpan{}
	return nil
}

// filterOf returns a filter, sized for n keys, of the short keys of the
// epochs from..to-1.
func (x txIndex) filterOf(from, to uint32, n int) filter {
	f := newFilter(n)
	c := x.epochs.Cursor()
	end := epochKey(to)
	for k, _ := c.Seek(epochKey(from)); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		f.add(k[4:])
	}
	return f
}

// points reports whether the index sends a lookup of id, the transaction
// at leaf index leaf, to (height, pos), without reading the block: what a
// check of a block it has decoded needs. The short entry may belong to
// another transaction only if id is under its full ID. An entry of a
// sealed epoch must be in the epoch's filter, and of a sealed group in
// the group's.
func (x txIndex) points(id chain.Hash, leaf, height uint64, pos uint32) bool {
	want := string(encodeTxPos(height, pos))
	if x.partitioned() {
		e := epochOf(leaf)
		if string(x.epochs.Get(shortKey(e, id))) == want {
			return held(x.filters.Get(epochKey(e)), id) && held(x.groups.Get(epochKey(e>>groupBits)), id)
		}
	}
	if x.legacy != nil && string(x.legacy.Get(id[:txKeyLen])) == want {
		return true
	}
	return string(x.long.Get(id[:])) == want
}

// held reports whether f, if there is one, is well formed and may hold
// id's short key.
func held(f []byte, id chain.Hash) bool {
	return f == nil || filter(f).wellFormed() && filter(f).mayHold(id[:txKeyLen])
}
