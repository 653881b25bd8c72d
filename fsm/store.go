package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// Bucket names. The layout is part of the on-disk format.
var (
	bucketMeta     = []byte("meta")     // applied index, head header, log frontier
	bucketBlocks   = []byte("blocks")   // height (u64 BE) -> encoded block
	bucketTxEpochs = []byte("txepochs") // epoch (u32 BE) | tx ID prefix (txKeyLen) -> uvarint height | uvarint position (txindex.go)
	bucketTxFilter = []byte("txfilter") // epoch (u32 BE) -> Bloom filter of a sealed epoch's keys (filter.go)
	bucketTxGroups = []byte("txgroups") // group of epochs (u32 BE) -> Bloom filter of its epochs' keys
	bucketTxLong   = []byte("txlong")   // tx ID (32) -> the same, for IDs whose prefix another holds
	bucketTxIdx    = []byte("txidx")    // format 2's index, tx ID prefix -> the same; read-only, only in converted stores
	bucketTiles    = []byte("tiles")    // tile level (u8) | tile index (u64 BE) -> up to 256 Merkle hashes (tiles.go)
	bucketDedup    = []byte("dedup")    // scoped idempotency key -> dedup record

	// Buckets of format 1, which format 2 replaced.
	bucketTxsV1   = []byte("txs")   // tx ID (32) -> height | leaf index | position
	bucketNodesV1 = []byte("nodes") // level (u8) | index (u64 BE) -> Merkle node hash

	keyApplied  = []byte("applied")
	keyHead     = []byte("head")
	keyFrontier = []byte("frontier")
	keyGroup    = []byte("group")
	keyFormat   = []byte("format")
)

// FormatVersion is the on-disk layout of the chain store this build
// reads and writes, recorded under meta/format (4 bytes, big-endian).
// Version 1 kept one bbolt key per Merkle node (bucket nodes) and a
// transaction index keyed by the full ID (bucket txs); stores written
// before the layout was versioned have no format key and are version 1.
// Version 2 keeps the Merkle hashes in C2SP tiles (tiles.go) and a
// compact transaction index (txindex.go) in one tree (txidx). Version 3
// partitions the transaction index into epochs of the log (txepochs,
// txfilter, txgroups), so that appends touch only the newest epoch's pages; it
// keeps a version-2 store's txidx as it is, read-only. A version-1 store
// is converted by MigrateFile, which a node runs before it opens its
// store; a version-2 store is converted in place, in one bbolt
// transaction, by MigrateFile or by opening it for writing, and can be
// read as it is; any other version is refused (ErrFormat) rather than
// misread.
const FormatVersion = 3

// formatTxIdx is the last version whose transaction index is txidx alone.
const formatTxIdx = 2

// ErrFormat: the chain store was written in an on-disk format this build
// does not read.
var ErrFormat = errors.New("fsm: unsupported chain store format")

// formatOf returns the format version meta records: 1 for a store written
// before versioning, 0 for an unreadable record.
func formatOf(meta *bolt.Bucket) uint32 {
	v := meta.Get(keyFormat)
	switch {
	case v == nil:
		return 1
	case len(v) != 4:
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// checkFormat returns ErrFormat, saying what to do, unless meta records
// a format this build reads: FormatVersion, or version 2, which opening
// the store for writing converts (upgradeTxIdx).
func checkFormat(meta *bolt.Bucket) error {
	switch v := formatOf(meta); v {
	case FormatVersion, formatTxIdx:
		return nil
	case 1:
		return fmt.Errorf("%w: version 1, this build reads version %d: a node of this build converts its store when it starts "+
			"(or run 'qledger chain migrate --data DIR' on the stopped node's data directory)", ErrFormat, FormatVersion)
	case 0:
		return fmt.Errorf("%w: unreadable version record, this build reads version %d: restore this replica from a healthy peer's snapshot", ErrFormat, FormatVersion)
	default:
		return fmt.Errorf("%w: version %d, this build reads version %d: use the qledger release that wrote it, "+
			"or restore this replica from a healthy peer's snapshot", ErrFormat, v, FormatVersion)
	}
}

// Store is a group's chain in one bbolt file. Reads are safe concurrently
// with each other and with the FSM applying entries; Restore swaps the file
// under an exclusive lock.
type Store struct {
	path   string
	group  uint32
	noSync bool
	refs   bool // raft snapshots are references (StoreOptions.ReferenceSnapshots)

	mu sync.RWMutex // guards db against Restore swapping it
	db *bolt.DB
	// gen counts the files Restore installed, so a verification that
	// spans several read transactions notices a swap.
	gen atomic.Uint64

	// deploys counts the deployments begun in write transactions
	// (deployBegins), deploysEnded those whose transaction has ended
	// (deploysSettled); with gen they version fnCache, the decoded
	// FunctionMeta entries read under version fnAt (see FunctionMeta).
	deploys      atomic.Uint64
	deploysEnded atomic.Uint64
	fnMu         sync.Mutex
	fnAt         [2]uint64
	fnCache      map[string]FunctionMeta
}

func (s *Store) generation() uint64 { return s.gen.Load() }

// StoreOptions tune a store.
type StoreOptions struct {
	// NoSync skips fsync on every commit. A process crash loses nothing
	// (bbolt is copy-on-write and the page cache survives), but after a
	// machine crash the file may be stale or damaged, so it must be
	// rebuilt from the raft snapshot and log: Sync, a clean-shutdown
	// marker and the boot ID (see cluster) tell a clean stop or a
	// process crash from a machine crash. Without NoSync the store is
	// durable at every commit.
	NoSync bool
	// ReferenceSnapshots makes the raft snapshots of a durable store (no
	// NoSync) references to it instead of copies (FSM.Snapshot): O(1)
	// each. Such a store, once damaged, cannot be rebuilt from its own
	// snapshots; it must come from a peer. Ignored with NoSync.
	ReferenceSnapshots bool
}

// OpenStore opens or creates the chain store of group at path. An existing
// store of a different group is refused.
func OpenStore(path string, group uint32, opts StoreOptions) (*Store, error) {
	db, err := openDB(path, group, opts.NoSync)
	if err != nil {
		return nil, err
	}
	return &Store{path: path, group: group, noSync: opts.NoSync, refs: opts.ReferenceSnapshots && !opts.NoSync, db: db}, nil
}

// Sync flushes every commit to stable storage.
func (s *Store) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.Sync()
}

func openDB(path string, group uint32, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second,
		NoSync:  noSync,
		// The freelist is rebuilt by scanning at open instead of being
		// written on every commit. Writing it made an open O(1) (0.14 ms
		// against 530 ms at 300,000 transactions), but the start check
		// walks every page anyway (CheckPages), and its page checks
		// count on a file with no freelist on disk.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		fresh := tx.Bucket(bucketMeta) == nil
		if !fresh {
			if err := checkFormat(tx.Bucket(bucketMeta)); err != nil {
				return err
			}
		}
		if fresh || formatOf(tx.Bucket(bucketMeta)) == formatTxIdx {
			if err := upgradeTxIdx(tx); err != nil {
				return err
			}
		}
		if err := createBuckets(tx); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if g := meta.Get(keyGroup); g != nil {
			if len(g) != 4 || binary.BigEndian.Uint32(g) != group {
				return fmt.Errorf("fsm: store at %s belongs to another group", path)
			}
			return nil
		}
		return meta.Put(keyGroup, binary.BigEndian.AppendUint32(nil, group))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	return db, nil
}

// storeBuckets are the top-level buckets of a FormatVersion store.
var storeBuckets = [][]byte{bucketMeta, bucketBlocks, bucketTxEpochs, bucketTxFilter, bucketTxGroups, bucketTxLong, bucketTiles, bucketDedup, bucketShards, bucketItems, bucketFunctions}

// upgradeTxIdx makes the store of tx, new or of version 2, a store of
// FormatVersion: it creates the buckets and stamps the version. A
// version-2 store keeps its txidx, which lookups read after the epochs,
// and its txlong; nothing else changes, so the conversion is one bbolt
// transaction, atomic, and O(1) in the size of the chain.
func upgradeTxIdx(tx *bolt.Tx) error {
	if err := createBuckets(tx); err != nil {
		return err
	}
	if err := failpoint("upgrade-before-stamp"); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion))
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range storeBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// OpenStoreReadOnly opens an existing store without creating or changing
// anything, for offline verification of a stopped node's data.
func OpenStoreReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	s := &Store{path: path, db: db}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("fsm: %s is not a chain store", path)
		}
		if err := checkFormat(meta); err != nil {
			return err
		}
		g := meta.Get(keyGroup)
		if len(g) != 4 {
			return fmt.Errorf("fsm: %s has no group", path)
		}
		s.group = binary.BigEndian.Uint32(g)
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Group is the node group this store belongs to.
func (s *Store) Group() uint32 { return s.group }

// Path is the bbolt file.
func (s *Store) Path() string { return s.path }

// Close closes the file. Reads after Close return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// begin starts a read transaction the caller must roll back.
func (s *Store) begin() (*bolt.Tx, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	return s.db.Begin(false)
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	var begun uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		err := fn(tx)
		// bbolt runs one write transaction at a time: every deployment
		// counted so far is this transaction's or an earlier one's.
		begun = s.deploys.Load()
		return err
	})
	s.deploysSettled(begun)
	return err
}

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }

// TxLocation says where a transaction sits in its group's chain.
type TxLocation struct {
	Height uint64 // block height
	Index  uint64 // leaf index in the group's whole transaction log
	Pos    uint32 // position inside the block
}

func (l TxLocation) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, l.Height)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	return binary.BigEndian.AppendUint32(b, l.Pos)
}

func decodeLocation(b []byte) (TxLocation, error) {
	if len(b) != 20 {
		return TxLocation{}, fmt.Errorf("fsm: corrupt tx index entry (%d bytes)", len(b))
	}
	return TxLocation{Height: binary.BigEndian.Uint64(b), Index: binary.BigEndian.Uint64(b[8:]), Pos: binary.BigEndian.Uint32(b[16:])}, nil
}

// state is what a write transaction needs to know about the chain's tip.
type state struct {
	applied uint64
	head    *chain.Header // nil when the chain is empty
	log     chain.Frontier
}

func readState(tx *bolt.Tx) (state, error) {
	var st state
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyApplied); v != nil {
		if len(v) != 8 {
			return st, fmt.Errorf("fsm: corrupt applied index")
		}
		st.applied = binary.BigEndian.Uint64(v)
	}
	if v := meta.Get(keyHead); v != nil {
		h, err := chain.DecodeHeader(v)
		if err != nil {
			return st, fmt.Errorf("fsm: corrupt head: %w", err)
		}
		st.head = &h
	}
	if v := meta.Get(keyFrontier); v != nil {
		if err := st.log.UnmarshalBinary(v); err != nil {
			return st, fmt.Errorf("fsm: corrupt log frontier: %w", err)
		}
	}
	return st, nil
}

// Head returns the newest block header, or ok=false if the chain is empty.
func (s *Store) Head() (h chain.Header, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyHead)
		if v == nil {
			return nil
		}
		h, err = chain.DecodeHeader(v)
		ok = err == nil
		return err
	})
	return h, ok, err
}

// AppliedIndex is the last raft index applied to the store.
func (s *Store) AppliedIndex() (uint64, error) {
	var st state
	err := s.view(func(tx *bolt.Tx) (err error) { st, err = readState(tx); return })
	return st.applied, err
}

// Block returns the encoded block at height.
func (s *Store) Block(height uint64) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBlocks).Get(heightKey(height))
		if v == nil {
			return fmt.Errorf("%w: block %d", ErrNotFound, height)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Blocks returns up to limit encoded blocks starting at height from, in
// height order. An empty result is not an error.
func (s *Store) Blocks(from uint64, limit int) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBlocks).Cursor()
		for k, v := c.Seek(heightKey(from)); k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, append([]byte(nil), v...))
		}
		return nil
	})
	return out, err
}

// AllBlocks iterates every stored block in key order, keyed by the height
// it is stored under, inside one consistent read. It is what chain
// verification reads; a read error ends the sequence and is returned by
// the error function.
func (s *Store) AllBlocks() (iter.Seq2[uint64, []byte], func() error) {
	var ierr error
	seq := func(yield func(uint64, []byte) bool) {
		ierr = s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBlocks).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("fsm: corrupt block key %x", k)
				}
				if !yield(binary.BigEndian.Uint64(k), v) {
					return nil
				}
			}
			return nil
		})
	}
	return seq, func() error { return ierr }
}

// TxRecord is a transaction found by ID, with an inclusion proof in the
// group's whole log as of the current head.
type TxRecord struct {
	ID       chain.Hash
	Location TxLocation
	TxBytes  []byte
	LeafHash chain.Hash
	TreeSize uint64
	Root     chain.Hash
	Proof    []chain.Hash
}

// Tx finds a transaction by ID and proves its inclusion in the log at the
// current head.
func (s *Store) Tx(id chain.Hash) (TxRecord, error) {
	var rec TxRecord
	err := s.view(func(tx *bolt.Tx) error {
		st, err := readState(tx)
		if err != nil {
			return err
		}
		p := prover{tx: tx, st: st}
		rec, err = p.record(id)
		return err
	})
	return rec, err
}

// ConsistencyProof proves that the log at size from is a prefix of the log
// at size to (both at most the current log size) and returns both roots.
func (s *Store) ConsistencyProof(from, to uint64) (rootFrom, rootTo chain.Hash, proof []chain.Hash, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		st, err := readState(tx)
		if err != nil {
			return err
		}
		if from > to || to > st.log.Size() {
			return fmt.Errorf("%w: from %d to %d, log size %d", ErrBadRange, from, to, st.log.Size())
		}
		nr := newTileReader(tx)
		if rootFrom, err = chain.RootAt(from, nr); err != nil {
			return err
		}
		if rootTo, err = chain.RootAt(to, nr); err != nil {
			return err
		}
		proof, err = chain.ConsistencyProof(from, to, nr)
		return err
	})
	return rootFrom, rootTo, proof, err
}

// MaxNodesPerRead caps one Nodes read: a C2SP tile's width.
const MaxNodesPerRead = 256

// Nodes returns the hashes of count consecutive perfect subtrees at Merkle
// level (tree height) level, from index from: node (level, i) covers the
// leaves [i<<level, (i+1)<<level). Every node must lie within the current
// log (ErrBadRange otherwise): once there, a node never changes, so what
// Nodes returns for a range is the same at every later size. These are
// the hashes C2SP tlog tiles carry, and at levels 0, 8, 16, ... a tile's
// worth is one stored value (tiles.go).
func (s *Store) Nodes(level uint8, from, count uint64) ([]chain.Hash, error) {
	if count < 1 || count > MaxNodesPerRead || level > 63 {
		return nil, fmt.Errorf("%w: %d nodes at level %d (1..%d at levels 0..63)", ErrBadRange, count, level, MaxNodesPerRead)
	}
	var out []chain.Hash
	err := s.view(func(tx *bolt.Tx) error {
		st, err := readState(tx)
		if err != nil {
			return err
		}
		if end := from + count; end < from || end > st.log.Size()>>level {
			return fmt.Errorf("%w: nodes %d..%d at level %d, log size %d", ErrBadRange, from, from+count-1, level, st.log.Size())
		}
		nr := newTileReader(tx)
		out = make([]chain.Hash, count)
		for i := range out {
			if out[i], err = nr.Node(level, from+uint64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
