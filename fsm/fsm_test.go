package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"qledger/chain"
)

func newFSM(t testing.TB, group uint32) *FSM {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "chain.db"), group, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return New(s, nil)
}

func tx(group uint32, key, payload string, nonce byte) []byte {
	t := chain.Tx{Kind: chain.TxData, Group: group, IdempotencyKey: key, Payload: []byte(payload)}
	t.Nonce[0] = nonce
	return t.Encode()
}

func apply(f *FSM, index uint64, data []byte) *ApplyResult {
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*ApplyResult)
}

func TestApplyAppendsBlocks(t *testing.T) {
	f := newFSM(t, 3)
	r := apply(f, 1, EncodeAppendBlock(100, [][]byte{tx(3, "", "a", 1), tx(3, "", "b", 2)}))
	if r.Err != nil || r.Block == nil || r.Block.Height != 1 || len(r.Txs) != 2 {
		t.Fatalf("first block: %+v", r)
	}
	r2 := apply(f, 2, EncodeAppendBlock(200, [][]byte{tx(3, "", "c", 3)}))
	if r2.Block.Height != 2 || r2.Txs[0].Location != (TxLocation{Height: 2, Index: 2, Pos: 0}) {
		t.Fatalf("second block: %+v %+v", r2.Block, r2.Txs[0].Location)
	}
	head, ok, err := f.Store().Head()
	if err != nil || !ok || head != *r2.Block {
		t.Fatalf("head %+v ok %v err %v", head, ok, err)
	}
	seq, errf := f.Store().AllBlocks()
	rep, err := chain.VerifyChain(3, seq)
	if err != nil || errf() != nil || rep.Blocks != 2 || rep.Txs != 3 {
		t.Fatalf("verify: %+v %v %v", rep, err, errf())
	}
	// Every transaction is found by ID with a proof that verifies.
	for _, res := range append(r.Txs, r2.Txs...) {
		rec, err := f.Store().Tx(res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.VerifyInclusion(rec.Location.Index, rec.TreeSize, rec.LeafHash, rec.Proof, head.LogRoot); err != nil {
			t.Fatalf("proof for %s: %v", res.ID, err)
		}
		if chain.TxID(rec.TxBytes) != res.ID {
			t.Fatal("tx bytes do not hash to the ID")
		}
	}
	if _, err := f.Store().Tx(chain.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestApplyIsIdempotentByIndex(t *testing.T) {
	f := newFSM(t, 0)
	cmd := EncodeAppendBlock(1, [][]byte{tx(0, "", "x", 1)})
	apply(f, 5, cmd)
	r := apply(f, 5, cmd)
	if !errors.Is(r.Err, ErrAlreadyApplied) {
		t.Fatalf("replay: %v", r.Err)
	}
	r = apply(f, 4, EncodeAppendBlock(1, [][]byte{tx(0, "", "y", 2)}))
	if !errors.Is(r.Err, ErrAlreadyApplied) {
		t.Fatalf("older index: %v", r.Err)
	}
	head, _, _ := f.Store().Head()
	if head.Height != 1 || head.LogSize != 1 {
		t.Fatalf("replay changed the chain: %+v", head)
	}
	if idx, _ := f.Store().AppliedIndex(); idx != 5 {
		t.Fatalf("applied index %d", idx)
	}
}

func TestApplyRejectsGarbageIdentically(t *testing.T) {
	cases := [][]byte{
		nil,
		{},
		{1},
		{0, 1},
		{1, 9},
		[]byte("\x00garbage garbage garbage"),
		EncodeAppendBlock(1, nil),
		EncodeAppendBlock(1, [][]byte{[]byte("\x00not a tx")}),
		EncodeAppendBlock(1, [][]byte{tx(7, "", "wrong group", 1)}),
		append(EncodeAppendBlock(1, [][]byte{tx(0, "", "x", 1)}), 0),
	}
	a, b := newFSM(t, 0), newFSM(t, 0)
	for i, c := range cases {
		ra, rb := apply(a, uint64(i+1), c), apply(b, uint64(i+1), c)
		if ra.Err == nil || ra.Block != nil {
			t.Fatalf("case %d accepted: %+v", i, ra)
		}
		if ra.Err.Error() != rb.Err.Error() {
			t.Fatalf("case %d: replicas disagree: %v vs %v", i, ra.Err, rb.Err)
		}
	}
	if _, ok, _ := a.Store().Head(); ok {
		t.Fatal("garbage created a block")
	}
	if idx, _ := a.Store().AppliedIndex(); idx != uint64(len(cases)) {
		t.Fatalf("applied index %d, want %d", idx, len(cases))
	}
}

func TestDeduplication(t *testing.T) {
	f := newFSM(t, 0)
	first := apply(f, 1, EncodeAppendBlock(1, [][]byte{tx(0, "k1", "body", 1)}))
	// Same key, same body, different nonce (a retry through another node).
	again := apply(f, 2, EncodeAppendBlock(2, [][]byte{tx(0, "k1", "body", 2)}))
	if again.Block != nil || !again.Txs[0].Duplicate || again.Txs[0].ID != first.Txs[0].ID || again.Txs[0].Location != first.Txs[0].Location {
		t.Fatalf("retry: %+v", again)
	}
	conflict := apply(f, 3, EncodeAppendBlock(3, [][]byte{tx(0, "k1", "other body", 3)}))
	if !errors.Is(conflict.Txs[0].Err, ErrIdempotencyConflict) || conflict.Block != nil {
		t.Fatalf("conflict: %+v", conflict.Txs[0])
	}
	// Inside one block: the second use of a key is a duplicate of the first,
	// a different body under it a conflict, and the exact same bytes twice
	// are stored once.
	dup := tx(0, "", "same", 9)
	r := apply(f, 4, EncodeAppendBlock(4, [][]byte{tx(0, "k2", "v", 4), tx(0, "k2", "v", 5), tx(0, "k2", "w", 6), dup, dup}))
	if r.Block == nil || r.Block.TxCount != 2 {
		t.Fatalf("in-block duplicates: %+v", r.Block)
	}
	if !r.Txs[1].Duplicate || r.Txs[1].ID != r.Txs[0].ID || r.Txs[1].Location != r.Txs[0].Location {
		t.Fatalf("in-block retry: %+v vs %+v", r.Txs[1], r.Txs[0])
	}
	if !errors.Is(r.Txs[2].Err, ErrIdempotencyConflict) || !r.Txs[4].Duplicate || r.Txs[4].Location != r.Txs[3].Location {
		t.Fatalf("in-block conflict or exact dup: %+v %+v", r.Txs[2], r.Txs[4])
	}
	// Lookup agrees with Apply.
	probe := chain.Tx{Kind: chain.TxData, IdempotencyKey: "k1", Payload: []byte("body")}
	id, loc, ok, err := f.Store().Lookup(&probe)
	if err != nil || !ok || id != first.Txs[0].ID || loc != first.Txs[0].Location {
		t.Fatalf("lookup: %v %v %v", ok, err, loc)
	}
	probe.Payload = []byte("nope")
	if _, _, _, err := f.Store().Lookup(&probe); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("lookup conflict: %v", err)
	}
}

func TestBatchMatchesSingle(t *testing.T) {
	var logs []*raft.Log
	for i := 1; i <= 30; i++ {
		typ := raft.LogCommand
		if i%7 == 0 {
			typ = raft.LogConfiguration
		}
		logs = append(logs, &raft.Log{Index: uint64(i), Type: typ, Data: EncodeAppendBlock(int64(i), [][]byte{tx(0, fmt.Sprint(i%5), fmt.Sprint(i), byte(i))})})
	}
	a, b := newFSM(t, 0), newFSM(t, 0)
	a.ApplyBatch(logs)
	for _, l := range logs {
		b.Apply(l)
	}
	ha, _, _ := a.Store().Head()
	hb, _, _ := b.Store().Head()
	if ha != hb || ha.Height == 0 {
		t.Fatalf("batch head %+v, single head %+v", ha, hb)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	src := newFSM(t, 2)
	for i := 1; i <= 10; i++ {
		apply(src, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(2, fmt.Sprint("k", i), "p", byte(i))}))
	}
	snap, err := src.FullSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	// Applies after the snapshot do not leak into it.
	apply(src, 11, EncodeAppendBlock(11, [][]byte{tx(2, "", "late", 1)}))

	dst := newFSM(t, 2)
	apply(dst, 1, EncodeAppendBlock(1, [][]byte{tx(2, "", "to be replaced", 1)}))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if n := dst.Restores(); n != 1 {
		t.Fatalf("%d restores counted, want 1", n)
	}
	h, _, _ := dst.Store().Head()
	if h.Height != 10 {
		t.Fatalf("restored head %d", h.Height)
	}
	if idx, _ := dst.Store().AppliedIndex(); idx != 10 {
		t.Fatalf("restored applied index %d", idx)
	}
	// The restored replica continues exactly like the source.
	r := apply(dst, 11, EncodeAppendBlock(11, [][]byte{tx(2, "", "late", 1)}))
	hs, _, _ := src.Store().Head()
	if *r.Block != hs {
		t.Fatal("restored replica diverged from the source")
	}
	// The dedup table came along.
	if r := apply(dst, 12, EncodeAppendBlock(12, [][]byte{tx(2, "k3", "p", 99)})); !r.Txs[0].Duplicate {
		t.Fatal("dedup table lost in restore")
	}
}

// TestRestoreWhileSnapshotOpen: raft may restore a snapshot (one the
// leader sent) while a snapshot this FSM took is not yet persisted: its
// snapshot goroutine holds the FSMSnapshot while it waits for raft's main
// goroutine, which waits for Restore. Restore must not wait for the open
// snapshot, and the snapshot still persists the state it captured.
func TestRestoreWhileSnapshotOpen(t *testing.T) {
	src := newFSM(t, 2)
	for i := 1; i <= 10; i++ {
		apply(src, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(2, "", fmt.Sprint("src", i), byte(i))}))
	}
	snap, _ := src.FullSnapshot()
	var incoming sink
	if err := snap.Persist(&incoming); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	f := newFSM(t, 2)
	for i := 1; i <= 3; i++ {
		apply(f, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(2, "", fmt.Sprint("own", i), byte(i))}))
	}
	open, err := f.FullSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer open.Release()
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(bytes.NewReader(incoming.Bytes()))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Restore waits for a snapshot that is not persisted yet")
	}
	if h, _, _ := f.Store().Head(); h.Height != 10 {
		t.Fatalf("restored head %d, want 10", h.Height)
	}
	// The open snapshot captured the store before the restore.
	var old sink
	if err := open.Persist(&old); err != nil {
		t.Fatal(err)
	}
	open.Release()
	g := newFSM(t, 2)
	if err := g.Restore(io.NopCloser(bytes.NewReader(old.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := g.Store().Head(); h.Height != 3 {
		t.Fatalf("the snapshot taken before the restore has head %d, want 3", h.Height)
	}
}

func TestRestoreRejectsGarbageAndKeepsStore(t *testing.T) {
	f := newFSM(t, 1)
	apply(f, 1, EncodeAppendBlock(1, [][]byte{tx(1, "", "keep me", 1)}))
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte("not a bbolt file")))); err == nil {
		t.Fatal("garbage snapshot accepted")
	}
	other := newFSM(t, 5)
	snap, _ := other.FullSnapshot()
	var s sink
	snap.Persist(&s)
	snap.Release()
	if err := f.Restore(io.NopCloser(&s)); err == nil {
		t.Fatal("another group's snapshot accepted")
	}
	if h, ok, err := f.Store().Head(); err != nil || !ok || h.Height != 1 {
		t.Fatalf("store damaged by a bad restore: %+v %v %v", h, ok, err)
	}
	if n := f.Restores(); n != 0 {
		t.Fatalf("refused snapshots counted as %d restores", n)
	}
}

func TestConsistencyProof(t *testing.T) {
	f := newFSM(t, 0)
	var roots []chain.Hash
	for i := 1; i <= 12; i++ {
		r := apply(f, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(0, "", fmt.Sprint(i), 1), tx(0, "", fmt.Sprint(i), 2)}))
		roots = append(roots, r.Block.LogRoot)
	}
	for from := uint64(0); from <= 24; from++ {
		for to := from; to <= 24; to++ {
			rf, rt, proof, err := f.Store().ConsistencyProof(from, to)
			if err != nil {
				t.Fatal(err)
			}
			if to%2 == 0 && to > 0 && rt != roots[to/2-1] {
				t.Fatalf("root at %d differs from block header", to)
			}
			if from > 0 {
				if err := chain.VerifyConsistency(from, to, rf, rt, proof); err != nil {
					t.Fatalf("%d->%d: %v", from, to, err)
				}
			}
		}
	}
	if _, _, _, err := f.Store().ConsistencyProof(3, 25); !errors.Is(err, ErrBadRange) {
		t.Fatalf("beyond log: %v", err)
	}
	if _, _, _, err := f.Store().ConsistencyProof(5, 4); !errors.Is(err, ErrBadRange) {
		t.Fatalf("reversed: %v", err)
	}
}

func TestOpenStoreWrongGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := OpenStore(path, 1, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenStore(path, 2, StoreOptions{}); err == nil {
		t.Fatal("opened group 1's store as group 2")
	}
	ro, err := OpenStoreReadOnly(path)
	if err != nil || ro.Group() != 1 {
		t.Fatalf("read-only open: %v", err)
	}
	ro.Close()
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(EncodeAppendBlock(1, [][]byte{tx(0, "k", "p", 1)}))
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeAppendBlock(c.Timestamp, c.Txs), b) {
			t.Fatal("accepted a non-canonical command")
		}
	})
}

// FuzzApply checks that any entry is applied without panicking and
// identically on two replicas.
func FuzzApply(f *testing.F) {
	f.Add(EncodeAppendBlock(1, [][]byte{tx(0, "k", "p", 1)}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, y := newFSM(t, 0), newFSM(t, 0)
		rx, ry := apply(x, 1, b), apply(y, 1, b)
		if (rx.Err == nil) != (ry.Err == nil) || (rx.Block == nil) != (ry.Block == nil) {
			t.Fatal("replicas disagree")
		}
		if rx.Block != nil && *rx.Block != *ry.Block {
			t.Fatal("replicas built different blocks")
		}
	})
}
