package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
	"qledger/shard"
)

// Buckets of the shared-data index.
var (
	bucketShards = []byte("shards") // data ID | 0 | share index u16 | segment u32 -> tx ID
	bucketItems  = []byte("items")  // data ID -> ItemMeta (JSON)
)

// ItemMeta describes a shared data item as this group stores it (from the
// first segment committed for it).
type ItemMeta struct {
	DataID      string     `json:"data_id"`
	Index       int        `json:"index"`
	Shares      int        `json:"shares"`
	Threshold   int        `json:"threshold"`
	Scheme      string     `json:"scheme"`
	Segments    int        `json:"segments"`
	ShareSize   int64      `json:"share_size"`
	ShareHash   chain.Hash `json:"share_hash"`
	Uploader    string     `json:"uploader,omitempty"`
	Description string     `json:"description,omitempty"`
	Digest      []byte     `json:"digest,omitempty"`
	Readers     []string   `json:"readers,omitempty"`
	Height      uint64     `json:"height"`
}

// CanRead reports whether caller may fetch this group's share.
func (m *ItemMeta) CanRead(caller string) bool {
	r := shard.Record{Readers: m.Readers}
	return r.CanRead(caller)
}

func shardKey(dataID string, index, segment int) []byte {
	k := append([]byte(dataID), 0)
	k = binary.BigEndian.AppendUint16(k, uint16(index))
	return binary.BigEndian.AppendUint32(k, uint32(segment))
}

// indexShard records a committed shard transaction. A record that does not
// decode, is for another group's share, or repeats a segment already
// stored is not indexed (the first commit wins), identically on every
// replica.
func (w *writer) indexShard(t *chain.Tx, id chain.Hash, height uint64) error {
	r, err := shard.Decode(t.Payload)
	if err != nil || r.Index != int(w.group) {
		return nil
	}
	items := w.tx.Bucket(bucketItems)
	if v := items.Get([]byte(r.DataID)); v != nil {
		var m ItemMeta
		if json.Unmarshal(v, &m) != nil || m.Shares != r.Shares || m.Threshold != r.Threshold || m.Segments != r.Segments || m.ShareHash != chain.Hash(r.ShareHash) {
			return nil // a segment of a different upload under the same ID
		}
	} else {
		m := ItemMeta{DataID: r.DataID, Index: r.Index, Shares: r.Shares, Threshold: r.Threshold, Scheme: r.Scheme, Segments: r.Segments,
			ShareSize: r.ShareSize, ShareHash: r.ShareHash, Uploader: r.Uploader, Description: r.Description, Digest: r.Digest, Readers: r.Readers, Height: height}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := items.Put([]byte(r.DataID), b); err != nil {
			return err
		}
	}
	shards := w.tx.Bucket(bucketShards)
	key := shardKey(r.DataID, r.Index, r.Segment)
	if shards.Get(key) != nil {
		return nil
	}
	return shards.Put(key, id[:])
}

// Item returns a data item's metadata and the transactions holding its
// share's segments, in order, each with an inclusion proof at the current
// head (all at the same head). It fails with ErrNotFound if the item or a
// segment is missing.
func (s *Store) Item(dataID string) (ItemMeta, []TxRecord, error) {
	return s.ItemSegments(dataID, 0, shard.MaxSegments)
}

// ItemSegments is Item for segments from..from+limit-1 of the share only,
// fewer if the share ends sooner. The metadata and all the records are
// read in one read transaction, so every proof is for the same head: the
// current one. from must be a segment of the share (0..Segments-1) and
// limit at least 1, else it fails with ErrBadRange; it fails with
// ErrNotFound if the item or a segment of the range is missing.
func (s *Store) ItemSegments(dataID string, from, limit int) (ItemMeta, []TxRecord, error) {
	var (
		meta ItemMeta
		recs []TxRecord
	)
	if from < 0 || limit < 1 {
		return meta, nil, fmt.Errorf("%w: segments from %d, limit %d of item %q (want from >= 0, limit >= 1)", ErrBadRange, from, limit, dataID)
	}
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketItems).Get([]byte(dataID))
		if v == nil {
			return fmt.Errorf("%w: data item %q", ErrNotFound, dataID)
		}
		if err := json.Unmarshal(v, &meta); err != nil {
			return fmt.Errorf("fsm: corrupt item %q: %w", dataID, err)
		}
		if from >= meta.Segments {
			return fmt.Errorf("%w: segments from %d of item %q, which has %d", ErrBadRange, from, dataID, meta.Segments)
		}
		st, err := readState(tx)
		if err != nil {
			return err
		}
		pr := prover{tx: tx, st: st}
		end := from + min(limit, meta.Segments-from)
		recs = make([]TxRecord, 0, end-from)
		for seg := from; seg < end; seg++ {
			v := tx.Bucket(bucketShards).Get(shardKey(dataID, meta.Index, seg))
			if len(v) != 32 {
				return fmt.Errorf("%w: segment %d of %d of item %q not committed", ErrNotFound, seg, meta.Segments, dataID)
			}
			rec, err := pr.record(chain.Hash(v))
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return meta, nil, err
	}
	return meta, recs, nil
}

// prover proves transactions' inclusion in the log of st, all within one
// read transaction, as Store.Tx does one at a time. It keeps the Merkle
// tiles it read: a share's segments often share them.
type prover struct {
	tx    *bolt.Tx
	st    state
	nodes *tileReader
}

func (p *prover) record(id chain.Hash) (TxRecord, error) {
	rec := TxRecord{ID: id}
	loc, blk, ok, err := newTxIndex(p.tx).get(id)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, fmt.Errorf("%w: transaction %s", ErrNotFound, id)
	}
	rec.Location = loc
	rec.TxBytes = blk.Txs[loc.Pos]
	rec.LeafHash = chain.LeafHash(rec.TxBytes)
	rec.TreeSize = p.st.log.Size()
	rec.Root = p.st.log.Root()
	if p.nodes == nil {
		p.nodes = newTileReader(p.tx)
	}
	rec.Proof, err = chain.InclusionProof(loc.Index, rec.TreeSize, p.nodes)
	return rec, err
}

// Items lists the data items whose description contains substr ("" for
// all), sorted by data ID, at most limit.
func (s *Store) Items(substr string, limit int) ([]ItemMeta, error) {
	var out []ItemMeta
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketItems).ForEach(func(k, v []byte) error {
			if len(out) >= limit {
				return nil
			}
			var m ItemMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("fsm: corrupt item %q: %w", k, err)
			}
			if strings.Contains(m.Description, substr) {
				out = append(out, m)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].DataID < out[j].DataID })
	return out, err
}
