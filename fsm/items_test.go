package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"qledger/chain"
	"qledger/shard"
)

// storeShare commits share 0 of dataID, of n segments, to group 0, two
// segments a block, after a data transaction, and returns the segments'
// transactions.
func storeShare(t *testing.T, f *FSM, dataID string, n int) [][]byte {
	t.Helper()
	share := bytes.Repeat([]byte{7}, (n-1)*shard.MaxSegmentBytes+100)
	recs := shard.Split(shard.Record{DataID: dataID, Index: 0, Shares: 1, Threshold: 1, Scheme: "dispersal", ShareHash: sha256.Sum256(share)}, share)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	var txs [][]byte
	for _, r := range recs {
		txs = append(txs, (&chain.Tx{Kind: chain.TxShard, Group: 0, Payload: r.Encode()}).Encode())
	}
	index := uint64(1)
	if r := apply(f, index, EncodeAppendBlock(1, [][]byte{tx(0, "", "before", 1)})); r.Err != nil {
		t.Fatal(r.Err)
	}
	for k := 0; k < n; k += 2 {
		index++
		if r := apply(f, index, EncodeAppendBlock(int64(index), txs[k:min(k+2, n)])); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return txs
}

// TestItemSegments: a range of a share's segments comes in order, cut at
// the share's end, every proof for the current head; a range outside the
// share is refused with ErrBadRange, an unknown item with ErrNotFound.
func TestItemSegments(t *testing.T) {
	f := newFSM(t, 0)
	txs := storeShare(t, f, "item-1", 5)
	head, _, err := f.Store().Head()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, limit int
		// want: the segments returned; nil for ErrBadRange.
		want []int
	}{
		{0, 5, []int{0, 1, 2, 3, 4}},
		{0, 2, []int{0, 1}},
		{1, 3, []int{1, 2, 3}},
		{3, 100, []int{3, 4}},
		{4, 1, []int{4}},
		{5, 1, nil},
		{9, 1, nil},
		{-1, 2, nil},
		{0, 0, nil},
		{2, -3, nil},
	}
	for _, tc := range tests {
		meta, recs, err := f.Store().ItemSegments("item-1", tc.from, tc.limit)
		if tc.want == nil {
			if !errors.Is(err, ErrBadRange) {
				t.Errorf("from %d limit %d: want ErrBadRange, got %v (%d records)", tc.from, tc.limit, err, len(recs))
			}
			continue
		}
		if err != nil {
			t.Fatalf("from %d limit %d: %v", tc.from, tc.limit, err)
		}
		if meta.DataID != "item-1" || meta.Segments != 5 || len(recs) != len(tc.want) {
			t.Fatalf("from %d limit %d: meta %+v, %d records", tc.from, tc.limit, meta, len(recs))
		}
		for k, rec := range recs {
			seg := tc.want[k]
			if !bytes.Equal(rec.TxBytes, txs[seg]) || rec.ID != chain.TxID(txs[seg]) {
				t.Fatalf("from %d limit %d: record %d is not segment %d", tc.from, tc.limit, k, seg)
			}
			if rec.TreeSize != head.LogSize || rec.Root != head.LogRoot {
				t.Fatalf("segment %d: proof for log size %d, head has %d", seg, rec.TreeSize, head.LogSize)
			}
			if err := chain.VerifyInclusion(rec.Location.Index, rec.TreeSize, rec.LeafHash, rec.Proof, head.LogRoot); err != nil {
				t.Fatalf("segment %d: %v", seg, err)
			}
		}
	}
	// Item is the whole range.
	_, all, err := f.Store().Item("item-1")
	if err != nil || len(all) != 5 || !bytes.Equal(all[4].TxBytes, txs[4]) {
		t.Fatalf("item: %d records, %v", len(all), err)
	}
	if _, _, err := f.Store().ItemSegments("no-such-item", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown item: %v", err)
	}
}
