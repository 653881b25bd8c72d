package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// A durable store (StoreOptions.NoSync false) is its own snapshot: every
// commit is fsynced, so the raft snapshot only has to record which store
// state it stands for. Such a snapshot — a reference — costs O(1) to
// take whatever the chain's size; SnapshotStore streams the live store in
// its place when raft sends it to a follower (InstallSnapshot). See
// docs/DESIGN.md, "Snapshots of an append-only chain".

// refMagic starts every reference snapshot. A bbolt file starts with the
// page id of its first meta page (eight zero bytes), so the two never
// look alike.
var refMagic = []byte("QLEDGER-SNAPSHOT-REF\n")

// refVersion is the reference format this build writes and reads.
const refVersion = 1

// ErrSnapshotRef: a snapshot that refers to the live store was handed
// where a copy of a store is needed (Restore, Rebuild). Open it through
// SnapshotStore, which streams the store it refers to.
var ErrSnapshotRef = errors.New("fsm: the snapshot refers to the live chain store and holds no copy of it")

// ErrRefStale: the live store no longer extends the state a reference
// snapshot recorded (it is behind it, or its chain differs), so it cannot
// stand for that snapshot.
var ErrRefStale = errors.New("fsm: the chain store does not extend the state its snapshot recorded")

// snapshotRef is what a reference snapshot records: the store state it
// stands for, and a fingerprint to recognise that state in the live store
// later (the head block's hash and the log root).
type snapshotRef struct {
	Version int    `json:"version"`
	Group   uint32 `json:"group"`
	Applied uint64 `json:"applied"`
	// Height and Head are the newest block's height and hash; Empty is
	// set when the chain had no block yet.
	Height  uint64     `json:"height"`
	Head    chain.Hash `json:"head"`
	Empty   bool       `json:"empty,omitempty"`
	LogSize uint64     `json:"log_size"`
	LogRoot chain.Hash `json:"log_root"`
}

// refOf reads the reference for the state tx sees.
func refOf(tx *bolt.Tx, group uint32) (snapshotRef, error) {
	st, err := readState(tx)
	if err != nil {
		return snapshotRef{}, err
	}
	ref := snapshotRef{Version: refVersion, Group: group, Applied: st.applied, Empty: st.head == nil, LogSize: st.log.Size(), LogRoot: st.log.Root()}
	if st.head != nil {
		ref.Height = st.head.Height
		ref.Head = st.head.Hash()
	}
	return ref, nil
}

func (r snapshotRef) encode() []byte {
	b, _ := json.Marshal(r) // a struct of numbers and hashes always encodes
	return append(append(append([]byte(nil), refMagic...), b...), '\n')
}

// decodeRef parses a reference snapshot; ok=false if b is not one.
func decodeRef(b []byte) (ref snapshotRef, ok bool, err error) {
	if !bytes.HasPrefix(b, refMagic) {
		return ref, false, nil
	}
	if err := json.Unmarshal(bytes.TrimSpace(b[len(refMagic):]), &ref); err != nil {
		return ref, true, fmt.Errorf("fsm: corrupt snapshot reference: %w", err)
	}
	if ref.Version != refVersion {
		return ref, true, fmt.Errorf("fsm: snapshot reference version %d, this build reads %d", ref.Version, refVersion)
	}
	return ref, true, nil
}

// extends checks that tx's store state contains the state ref recorded:
// the same group, an applied index at least ref's, and ref's head block
// stored at ref's height. The chain is append-only, so that block fixes
// every block below it.
func (r snapshotRef) extends(tx *bolt.Tx, group uint32) error {
	if r.Group != group {
		return fmt.Errorf("%w: reference of group %d, store of group %d", ErrRefStale, r.Group, group)
	}
	st, err := readState(tx)
	if err != nil {
		return err
	}
	if st.applied < r.Applied {
		return fmt.Errorf("%w: store applied to %d, reference at %d", ErrRefStale, st.applied, r.Applied)
	}
	if r.Empty {
		return nil
	}
	b, err := decodeAt(tx.Bucket(bucketBlocks), r.Height)
	if err != nil {
		return fmt.Errorf("%w: block %d: %v", ErrRefStale, r.Height, err)
	}
	if b.Header.Hash() != r.Head {
		return fmt.Errorf("%w: block %d differs", ErrRefStale, r.Height)
	}
	return nil
}

// refSnapshot is the FSMSnapshot of a durable store: Persist makes the
// store durable (a no-op in effect, each commit was fsynced) and writes the
// reference.
type refSnapshot struct {
	store *Store
	ref   snapshotRef
}

func (s *refSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.store.Sync(); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: sync store: %w", err)
	}
	if err := failpoint("snapshot-after-sync"); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := sink.Write(s.ref.encode()); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if err := failpoint("snapshot-before-close"); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *refSnapshot) Release() {}

// refPeek is how many bytes Open reads to tell a reference from a copy:
// a reference is a few hundred bytes.
const refPeek = 4096

// SnapshotStore wraps the raft snapshot store of f's group so that raft
// never sees a reference snapshot's bytes: Open of a reference returns a
// consistent copy of the live store instead (the bytes InstallSnapshot
// sends, and its size in the returned meta), after checking that the
// store extends the state the reference recorded and is not marked
// damaged. The copy may be newer than the snapshot's index; the receiver
// skips the entries its store already holds (Processor's applied index).
// Snapshots that are copies pass through unchanged. Either way the bytes
// are verified in full as they are read (checkedSend): a snapshot that
// does not verify ends with an error wrapping ErrDamaged one chunk short
// of its end, so neither a follower (InstallSnapshot) nor a local
// rebuild ever reads all of a damaged one.
func SnapshotStore(inner raft.SnapshotStore, f *FSM) raft.SnapshotStore {
	return &snapshotStore{SnapshotStore: inner, fsm: f}
}

type snapshotStore struct {
	raft.SnapshotStore
	fsm *FSM
}

func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.open(id)
	if err != nil {
		return nil, nil, err
	}
	checked, err := s.fsm.checkedSend(rc)
	if err != nil {
		return nil, nil, err
	}
	return meta, checked, nil
}

// open opens snapshot id as raft is to see it: a copy as stored, a
// reference as a copy of the live store.
func (s *snapshotStore) open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	if meta.Size > refPeek {
		return meta, rc, nil
	}
	head, err := io.ReadAll(io.LimitReader(rc, refPeek+1))
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("fsm: open snapshot %s: %w", id, err)
	}
	ref, isRef, err := decodeRef(head)
	if !isRef {
		return meta, readCloser{io.MultiReader(bytes.NewReader(head), rc), rc}, nil
	}
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("fsm: open snapshot %s: %w", id, err)
	}
	cp, size, err := s.fsm.streamStore(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("fsm: open snapshot %s: %w", id, err)
	}
	m := *meta
	m.Size = size
	return &m, cp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// streamStore returns a consistent copy of the live store, which must
// extend ref, and its exact size; Close ends the read transaction.
func (f *FSM) streamStore(ref snapshotRef) (io.ReadCloser, int64, error) {
	if err := f.Damaged(); err != nil {
		return nil, 0, fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	tx, err := f.store.begin()
	if err != nil {
		return nil, 0, err
	}
	if err := ref.extends(tx, f.store.group); err != nil {
		tx.Rollback()
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := tx.WriteTo(pw)
		if err == nil {
			err = failpoint("install-send-end")
		}
		pw.CloseWithError(err)
	}()
	return &txReader{PipeReader: pr, tx: tx, done: done}, tx.Size(), nil
}

// txReader streams a read transaction's copy of the store and ends the
// transaction when closed, once the copying goroutine has stopped.
type txReader struct {
	*io.PipeReader
	tx   *bolt.Tx
	done chan struct{}
}

func (r *txReader) Close() error {
	r.PipeReader.CloseWithError(io.ErrClosedPipe)
	<-r.done
	return r.tx.Rollback()
}

// IsReference reports whether the snapshot r starts is a reference to a
// live store rather than a copy of one. It reads at most a few bytes.
func IsReference(r io.Reader) (bool, error) {
	head := make([]byte, len(refMagic))
	if _, err := io.ReadFull(r, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(head, refMagic), nil
}
