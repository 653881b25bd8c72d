package fsm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// shortTxKeys makes the transaction index key on one byte of the ID for
// the rest of the test: among a few hundred transactions most then share
// a key with another.
func shortTxKeys(t *testing.T) {
	old := txKeyLen
	txKeyLen = 1
	t.Cleanup(func() { txKeyLen = old })
}

// Every lookup of the transaction index is exact even when IDs share a
// key: each transaction is found where it is, a resubmitted one is a
// duplicate of the original, an absent ID whose key is taken is not
// found, and a full verification passes — and fails if an entry under a
// full ID is damaged.
func TestTxIndexCollisions(t *testing.T) {
	shortTxKeys(t)
	f := newFSM(t, 1)
	s := f.Store()
	var all [][]byte
	for i := 1; i <= 40; i++ {
		var txs [][]byte
		for j := range 10 {
			txs = append(txs, tx(1, "", fmt.Sprint("collide ", i, " ", j), byte(j)))
		}
		if r := apply(f, uint64(i), EncodeAppendBlock(int64(i), txs)); r.Err != nil || r.Block == nil {
			t.Fatalf("block %d: %+v", i, r)
		}
		all = append(all, txs...)
	}
	var long int
	if err := s.view(func(tx *bolt.Tx) error { long = tx.Bucket(bucketTxLong).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if long < 100 {
		t.Fatalf("only %d of 400 transactions collided; the test does not test collisions", long)
	}
	for n, raw := range all {
		rec, err := s.Tx(chain.TxID(raw))
		want := TxLocation{Height: uint64(n/10 + 1), Pos: uint32(n % 10), Index: uint64(n)}
		if err != nil || rec.Location != want {
			t.Fatalf("transaction %d: %+v, %v; want %+v", n, rec.Location, err, want)
		}
	}
	r := apply(f, 41, EncodeAppendBlock(41, [][]byte{all[5], all[397], tx(1, "", "new", 1)}))
	if r.Err != nil || !r.Txs[0].Duplicate || r.Txs[0].Location.Index != 5 || !r.Txs[1].Duplicate || r.Txs[1].Location.Index != 397 || r.Txs[2].Duplicate {
		t.Fatalf("resubmitted transactions: %+v", r.Txs)
	}
	absent := chain.TxID(tx(1, "", "never submitted", 9))
	if _, err := s.Tx(absent); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent transaction whose key is taken: %v, want ErrNotFound", err)
	}
	if _, err := s.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Point a transaction filed under its full ID at its neighbour.
	var id chain.Hash
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		k, val := tx.Bucket(bucketTxLong).Cursor().First()
		copy(id[:], k)
		v = append(v, val...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, pos, err := decodeTxPos(v)
	if err != nil {
		t.Fatal(err)
	}
	rawPut(t, s, bucketTxLong, id[:], func([]byte) []byte { return encodeTxPos(h, pos^1) })
	if _, err := s.Tx(id); err == nil {
		t.Fatal("a lookup through a damaged entry found a transaction")
	}
	_, err = s.Verify(context.Background(), VerifyOptions{})
	if d, ok := DamageOf(err); !ok || d.Height != h {
		t.Fatalf("Verify = %v, want damage at height %d", err, h)
	}
}

// The tiles hold what one key per node held: every root, inclusion and
// consistency proof from them equals the reference construction, at
// tree sizes across two tile levels and with the log appended in batches
// of every size (partial tiles rewritten, tiles completed mid-batch).
func TestTilesServeEveryNode(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "tiles.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(createBuckets); err != nil {
		t.Fatal(err)
	}
	const n = tileWidth*tileWidth + 3*tileWidth + 17 // a full level-1 tile, a partial one above
	rng := rand.New(rand.NewPCG(1, 2))
	leaves := make([]chain.Hash, n)
	var log chain.Frontier
	for done := 0; done < n; {
		batch := min(n-done, 1+rng.IntN(700))
		err := db.Update(func(tx *bolt.Tx) error {
			w := newTileWriter(tx)
			for i := done; i < done+batch; i++ {
				leaves[i] = chain.LeafHash(fmt.Appendf(nil, "leaf %d", i))
				log.Append(leaves[i], w.emit)
			}
			return w.flush()
		})
		if err != nil {
			t.Fatal(err)
		}
		done += batch
	}
	err = db.View(func(tx *bolt.Tx) error {
		nr := newTileReader(tx)
		for _, size := range []uint64{1, 2, 255, 256, 257, 1000, tileWidth * tileWidth, n - 1, n} {
			want := chain.RootFromLeaves(leaves[:size])
			if got, err := chain.RootAt(size, nr); err != nil || got != want {
				return fmt.Errorf("root at %d: %v", size, err)
			}
			for _, i := range []uint64{0, size / 3, size - 1} {
				got, err := chain.InclusionProof(i, size, nr)
				want, _ := chain.InclusionProofFromLeaves(i, leaves[:size])
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					return fmt.Errorf("inclusion of %d at %d: %v", i, size, err)
				}
			}
			for _, from := range []uint64{1, size / 2, size - 1} {
				got, err := chain.ConsistencyProof(from, size, nr)
				want, _ := chain.ConsistencyProofFromLeaves(from, leaves[:size])
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					return fmt.Errorf("consistency from %d to %d: %v", from, size, err)
				}
			}
		}
		if log.Root() != chain.RootFromLeaves(leaves) {
			return errors.New("frontier root differs")
		}
		if _, err := nr.Node(0, n); err == nil {
			return errors.New("a leaf beyond the log was served")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
