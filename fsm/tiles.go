package fsm

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// The Merkle hashes of a group's log are stored as C2SP tlog tiles: the
// tile at tile level L and index N holds the hashes of the perfect
// subtrees of height 8L numbered N*256 to N*256+255, 32 bytes each, in
// order, under key L (1 byte) | N (8 bytes, big-endian) of the tiles
// bucket. The last tile of a level is partial (fewer than 256 hashes) and
// is rewritten as the log grows; once full it never changes. A node of a
// height between two tile levels is recomputed from the tile below it (at
// most 128 hashes, 127 hashing steps), as golang.org/x/mod/sumdb/tlog
// does. One leaf costs 32 bytes at level 0 plus 1/256 of that per level
// above, against about 114 bytes for one bbolt key per node.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	hashSize   = len(chain.Hash{})
)

func tileKey(level uint8, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{level}, index)
}

// tileReader serves perfect Merkle subtree hashes (chain.NodeReader) from
// the tiles bucket of one bbolt transaction. It keeps the tiles it read:
// a proof reads several nodes of the same tile.
type tileReader struct {
	b     *bolt.Bucket
	cache map[tileID][]byte
}

type tileID struct {
	level uint8
	index uint64
}

func newTileReader(tx *bolt.Tx) *tileReader {
	return &tileReader{b: tx.Bucket(bucketTiles), cache: map[tileID][]byte{}}
}

// tile returns the stored hashes of tile (level, index), nil if none.
func (r *tileReader) tile(id tileID) []byte {
	if t, ok := r.cache[id]; ok {
		return t
	}
	t := r.b.Get(tileKey(id.level, id.index))
	if len(t)%hashSize != 0 || len(t) > tileWidth*hashSize {
		t = nil // a damaged tile serves nothing
	}
	r.cache[id] = t
	return t
}

// Node returns the hash of the perfect subtree (level, index): a stored
// hash when level is a multiple of 8, else the root of the 2^(level%8)
// stored hashes under it.
func (r *tileReader) Node(level uint8, index uint64) (chain.Hash, error) {
	var h chain.Hash
	if level >= 64 {
		return h, fmt.Errorf("fsm: Merkle node (%d,%d) out of range", level, index)
	}
	up := level % tileHeight
	first := index << up // the first hash under it at the tile level
	if first>>up != index {
		return h, fmt.Errorf("fsm: Merkle node (%d,%d) out of range", level, index)
	}
	id := tileID{level: level / tileHeight, index: first / tileWidth}
	off, n := int(first%tileWidth), 1<<up
	t := r.tile(id)
	if len(t) < (off+n)*hashSize {
		return h, fmt.Errorf("fsm: Merkle node (%d,%d) missing (tile %d/%d holds %d hashes)", level, index, id.level, id.index, len(t)/hashSize)
	}
	if n == 1 {
		copy(h[:], t[off*hashSize:])
		return h, nil
	}
	return subtreeRoot(t[off*hashSize : (off+n)*hashSize]), nil
}

// tileRoot returns the root of the full tile id (the node of height
// 8(level+1) above it), or an error if the tile is not full.
func (r *tileReader) tileRoot(id tileID) (chain.Hash, error) {
	t := r.tile(id)
	if len(t) != tileWidth*hashSize {
		return chain.Hash{}, fmt.Errorf("fsm: tile %d/%d holds %d hashes, not %d", id.level, id.index, len(t)/hashSize, tileWidth)
	}
	return subtreeRoot(t), nil
}

// subtreeRoot returns the root of the perfect subtree over hashes, a
// power of two of them (at most a tile's).
func subtreeRoot(hashes []byte) chain.Hash {
	var buf [tileWidth]chain.Hash
	n := len(hashes) / hashSize
	hs := buf[:n]
	for i := range hs {
		copy(hs[i][:], hashes[i*hashSize:])
	}
	for ; n > 1; n /= 2 {
		for i := 0; i < n/2; i++ {
			hs[i] = chain.NodeHash(hs[2*i], hs[2*i+1])
		}
	}
	return hs[0]
}

// tileWriter gathers, within one write transaction, the hashes a
// chain.Frontier emits at tile levels (heights 0, 8, 16, ...) and writes
// each tile it changed once, at flush.
type tileWriter struct {
	b     *bolt.Bucket
	dirty map[tileID][]byte
	err   error
}

func newTileWriter(tx *bolt.Tx) *tileWriter {
	b := tx.Bucket(bucketTiles)
	// Keys only grow within a level: fill pages before splitting them.
	b.FillPercent = appendFill
	return &tileWriter{b: b, dirty: map[tileID][]byte{}}
}

// emit is the chain.Frontier emit function: it keeps the hashes of tile
// levels and drops the rest (they are recomputed from these).
func (w *tileWriter) emit(level uint8, index uint64, h chain.Hash) {
	if w.err != nil || level%tileHeight != 0 {
		return
	}
	id := tileID{level: level / tileHeight, index: index / tileWidth}
	t, ok := w.dirty[id]
	if !ok {
		t = append(make([]byte, 0, tileWidth*hashSize), w.b.Get(tileKey(id.level, id.index))...)
	}
	if pos := int(index % tileWidth); len(t) != pos*hashSize {
		w.err = fmt.Errorf("fsm: tile %d/%d holds %d hashes, the log appends hash %d", id.level, id.index, len(t)/hashSize, pos)
		return
	}
	w.dirty[id] = append(t, h[:]...)
}

// flush writes every changed tile, in key order, and returns the first
// error met since the last flush.
func (w *tileWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	ids := make([]tileID, 0, len(w.dirty))
	for id := range w.dirty {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b tileID) int {
		return cmp.Or(cmp.Compare(a.level, b.level), cmp.Compare(a.index, b.index))
	})
	for _, id := range ids {
		if err := w.b.Put(tileKey(id.level, id.index), w.dirty[id]); err != nil {
			return err
		}
	}
	clear(w.dirty)
	return nil
}
