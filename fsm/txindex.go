package fsm

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// The transaction index maps a transaction ID to where the transaction
// sits. It is keyed by the ID's first txKeyLen bytes, and its value is
// the block height and the position in the block as two uvarints (4–6
// bytes for any realistic chain); the leaf index follows from the block's
// header (its log size less its transaction count, plus the position).
// Every lookup is exact: the transaction found there is hashed and
// compared with the ID asked for. Two IDs that share a key (a collision,
// about n²/2^65 among n transactions) keep the first under the short
// key; every later one goes under its full 32-byte ID in the txlong
// bucket. A lookup that finds another transaction under the short key
// looks there next.

// txKeyLen is the length of a short key. A variable so that tests can
// shorten it to force collisions; it is part of the on-disk format.
var txKeyLen = 8

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

// txIndex is the transaction index inside one bbolt transaction.
type txIndex struct {
	short, long, blocks *bolt.Bucket
}

func newTxIndex(tx *bolt.Tx) txIndex {
	return txIndex{short: tx.Bucket(bucketTxIdx), long: tx.Bucket(bucketTxLong), blocks: tx.Bucket(bucketBlocks)}
}

// get finds transaction id: its location and its block, ok=false if it is
// not indexed. An entry that points at no such transaction is an error.
func (x txIndex) get(id chain.Hash) (loc TxLocation, blk *chain.Block, ok bool, err error) {
	v := x.short.Get(id[:txKeyLen])
	if v == nil {
		return loc, nil, false, nil
	}
	loc, blk, err = x.resolve(v)
	if err != nil {
		return loc, nil, false, err
	}
	if chain.TxID(blk.Txs[loc.Pos]) == id {
		return loc, blk, true, nil
	}
	if v = x.long.Get(id[:]); v == nil {
		return loc, nil, false, nil // another transaction holds the short key
	}
	if loc, blk, err = x.resolve(v); err != nil {
		return loc, nil, false, err
	}
	if chain.TxID(blk.Txs[loc.Pos]) != id {
		return loc, nil, false, fmt.Errorf("fsm: tx index entry of %s points at another transaction", id)
	}
	return loc, blk, true, nil
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

// put indexes transaction id, which must not be indexed yet, at (height,
// pos).
func (x txIndex) put(id chain.Hash, height uint64, pos uint32) error {
	v := encodeTxPos(height, pos)
	if x.short.Get(id[:txKeyLen]) == nil {
		return x.short.Put(id[:txKeyLen], v)
	}
	return x.long.Put(id[:], v)
}

// points reports whether the index sends a lookup of id to (height,
// pos), without reading the block: what a check of a block it has
// decoded needs. The short entry may belong to another transaction only
// if id is under its full ID.
func (x txIndex) points(id chain.Hash, height uint64, pos uint32) bool {
	want := string(encodeTxPos(height, pos))
	if v := x.short.Get(id[:txKeyLen]); v == nil {
		return false
	} else if string(v) == want {
		return true
	}
	return string(x.long.Get(id[:])) == want
}
