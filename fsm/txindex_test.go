package fsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// smallEpochs makes the transaction index's epochs 2^bits leaves, and its
// groups 2^groups epochs, for the rest of the test.
func smallEpochs(t testing.TB, bits, groups int) {
	oldE, oldG := epochBits, groupBits
	epochBits, groupBits = bits, groups
	t.Cleanup(func() { epochBits, groupBits = oldE, oldG })
}

// epochStream is a log of blocks of 1 to 23 transactions, every fifth
// block also resubmitting a transaction of an earlier block; the
// transactions in chain order of first appearance are in fresh.
type epochStream struct {
	logs  []*raft.Log
	fresh [][]byte
}

func newEpochStream(seed uint64, blocks int, first uint64, tag string) epochStream {
	rng := rand.New(rand.NewPCG(seed, 7))
	var s epochStream
	for i := range blocks {
		var txs [][]byte
		for j := range 1 + rng.IntN(23) {
			txs = append(txs, tx(1, "", fmt.Sprintf("%s %d %d", tag, i, j), byte(j)))
		}
		if i%5 == 4 && len(s.fresh) > 0 {
			txs = append(txs, s.fresh[rng.IntN(len(s.fresh))])
		}
		s.fresh = append(s.fresh, txs...)
		if i%5 == 4 {
			s.fresh = s.fresh[:len(s.fresh)-1]
		}
		idx := first + uint64(i)
		s.logs = append(s.logs, &raft.Log{Index: idx, Type: raft.LogCommand, Data: EncodeAppendBlock(int64(10000+idx), txs)})
	}
	return s
}

// applyBatched applies logs in batches of 1 to 6 entries, as raft hands
// them to a busy replica, and returns the results.
func applyBatched(f *FSM, logs []*raft.Log, seed uint64) []*ApplyResult {
	rng := rand.New(rand.NewPCG(seed, 9))
	var out []*ApplyResult
	for len(logs) > 0 {
		n := min(len(logs), 1+rng.IntN(6))
		for _, r := range f.ApplyBatch(logs[:n]) {
			out = append(out, r.(*ApplyResult))
		}
		logs = logs[n:]
	}
	return out
}

// bucketDump is every key and value of the named buckets.
func bucketDump(t *testing.T, s *Store, names ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	err := s.view(func(tx *bolt.Tx) error {
		for _, name := range names {
			fmt.Fprintf(&b, "%s:", name)
			bk := tx.Bucket(name)
			if bk == nil {
				continue
			}
			if err := bk.ForEach(func(k, v []byte) error { fmt.Fprintf(&b, " %x=%x", k, v); return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkAllFound checks that every transaction of txs (in chain order,
// the first at leaf first) is found where it is, with a proof.
func checkAllFound(t *testing.T, s *Store, txs [][]byte, first uint64) {
	t.Helper()
	for n, raw := range txs {
		rec, err := s.Tx(chain.TxID(raw))
		if err != nil || rec.Location.Index != first+uint64(n) || !bytes.Equal(rec.TxBytes, raw) {
			t.Fatalf("transaction %d: %+v, %v; want leaf %d", n, rec.Location, err, first+uint64(n))
		}
		if err := chain.VerifyInclusion(rec.Location.Index, rec.TreeSize, rec.LeafHash, rec.Proof, rec.Root); err != nil {
			t.Fatalf("transaction %d: %v", n, err)
		}
	}
}

// Lookups are exact across epochs, seals and shared keys: two replicas,
// one applying entry by entry and one in batches that complete epochs
// mid-batch, return the same results, hold the same index byte for
// byte, find every transaction where it is, answer every resubmission
// (across epochs) as a duplicate, find no absent ID, seal exactly the
// completed epochs, and verify.
func TestTxIndexEpochs(t *testing.T) {
	shortTxKeys(t)
	smallEpochs(t, 3, 2)
	st := newEpochStream(1, 80, 1, "epoch")
	a, b := newFSM(t, 1), newFSM(t, 1)
	ra := applyBatched(a, st.logs, 2)
	var rb []*ApplyResult
	for _, l := range st.logs {
		rb = append(rb, b.Apply(l).(*ApplyResult))
	}
	dups := 0
	for i := range ra {
		if ra[i].Err != nil || ra[i].Block == nil || fmt.Sprint(ra[i].Txs) != fmt.Sprint(rb[i].Txs) {
			t.Fatalf("entry %d: batched %+v, single %+v", i+1, ra[i], rb[i])
		}
		for _, r := range ra[i].Txs {
			if r.Duplicate {
				dups++
			}
		}
	}
	if dups != 80/5 {
		t.Fatalf("%d resubmissions answered as duplicates, want %d", dups, 80/5)
	}
	index := [][]byte{bucketTxEpochs, bucketTxFilter, bucketTxGroups, bucketTxLong}
	if da, db := bucketDump(t, a.Store(), index...), bucketDump(t, b.Store(), index...); da != db {
		t.Fatal("the replicas' transaction indexes differ")
	}
	size := uint64(len(st.fresh))
	var long, epochs, groups int
	count := func(bk *bolt.Bucket) (int, error) {
		n := 0
		c := bk.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if binary.BigEndian.Uint32(k) != uint32(n) {
				return n, fmt.Errorf("filter %x where filter %d was due", k, n)
			}
			n++
		}
		return n, nil
	}
	err := a.Store().view(func(tx *bolt.Tx) (err error) {
		long = tx.Bucket(bucketTxLong).Stats().KeyN
		if epochs, err = count(tx.Bucket(bucketTxFilter)); err != nil {
			return err
		}
		groups, err = count(tx.Bucket(bucketTxGroups))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if epochs != int(size>>epochBits) || groups != int(size>>(epochBits+groupBits)) || groups < 5 {
		t.Fatalf("%d sealed epochs and %d sealed groups at log size %d", epochs, groups, size)
	}
	if long < 5 {
		t.Fatalf("only %d transactions share a key within their epoch; the test does not test that", long)
	}
	checkAllFound(t, a.Store(), st.fresh, 0)
	for i := range 50 {
		if _, err := a.Store().Tx(chain.TxID(tx(1, "", fmt.Sprint("never submitted ", i), 9))); !errors.Is(err, ErrNotFound) {
			t.Fatalf("absent transaction %d: %v, want ErrNotFound", i, err)
		}
	}
	if _, err := a.Store().Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// Sealed epochs' and groups' filters are checked: one that misses a key
// it should hold is damage a check finds, and one that is not well formed
// is passed over by lookups (they stay exact) and reported by a check.
func TestTxIndexFilterDamage(t *testing.T) {
	smallEpochs(t, 3, 2) // 2 transactions a block: epoch 2 is blocks 9..12, group 0 blocks 1..16
	for _, c := range []struct {
		name     string
		bucket   []byte
		edit     func([]byte) []byte
		findable bool
		height   uint64
	}{
		{"epoch filter emptied", bucketTxFilter, func(v []byte) []byte { return make([]byte, len(v)) }, false, 9},
		{"epoch filter cut short", bucketTxFilter, func(v []byte) []byte { return v[:filterBlock-1] }, true, 9},
		{"group filter emptied", bucketTxGroups, func(v []byte) []byte { return make([]byte, len(v)) }, false, 1},
		{"group filter not whole blocks", bucketTxGroups, func(v []byte) []byte { return append(v, 0) }, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filled(t, 40)
			s := f.Store()
			key := epochKey(2)
			if bytes.Equal(c.bucket, bucketTxGroups) {
				key = epochKey(0)
			}
			rawPut(t, s, c.bucket, key, c.edit)
			raw, err := s.Block(10)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := chain.DecodeBlock(raw)
			if _, err := s.Tx(chain.TxID(b.Txs[0])); (err == nil) != c.findable {
				t.Fatalf("lookup through the damaged filter: %v", err)
			}
			_, err = s.Verify(context.Background(), VerifyOptions{})
			if d, ok := DamageOf(err); !ok || d.Height != c.height {
				t.Fatalf("Verify = %v, want damage at height %d", err, c.height)
			}
		})
	}
}

// format2Store copies testdata/format2.db.gz — a store of group 1
// written by the format-2 build: testdata/format1.db.gz converted (120
// blocks, 360 transactions, every seventh with the idempotency key
// "key-N"), then 30 blocks of 4 transactions appended (leaves 360..479,
// every third with the key "key2-N") — to a temporary file.
func format2Store(t *testing.T) string { return testdataStore(t, "format2.db.gz") }

// checkFormat2Content checks that the store at path holds the chain the
// format-2 test store holds, every transaction and key found, and that
// it keeps appending, across epoch seals, with resubmissions of old
// transactions answered as duplicates.
func checkFormat2Content(t *testing.T, path string) {
	t.Helper()
	if rep, err := VerifyStoreFile(path); err != nil || rep.Blocks != 150 || rep.Txs != 480 {
		t.Fatalf("VerifyStoreFile = %+v, %v", rep, err)
	}
	s, err := OpenStore(path, 1, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var all [][]byte
	blocks, ierr := s.AllBlocks()
	for _, raw := range blocks {
		b, err := chain.DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Txs...)
	}
	if err := ierr(); err != nil || len(all) != 480 {
		t.Fatalf("read %d transactions: %v", len(all), err)
	}
	checkAllFound(t, s, all, 0)
	for _, n := range []int{0, 7, 357, 360, 363, 477} {
		key := fmt.Sprint("key-", n)
		if n >= 360 {
			key = fmt.Sprint("key2-", n)
		}
		if id, loc, ok, err := s.LookupKey("", key); err != nil || !ok || id != chain.TxID(all[n]) || loc.Index != uint64(n) {
			t.Fatalf("%s: %s %+v %v %v", key, id, loc, ok, err)
		}
	}
	f := New(s, nil)
	st := newEpochStream(3, 20, 151, "after")
	for i, r := range applyBatched(f, st.logs, 4) {
		if r.Err != nil || r.Block == nil {
			t.Fatalf("entry %d after the conversion: %+v", i, r)
		}
	}
	checkAllFound(t, s, st.fresh, 480)
	r := apply(f, 171, EncodeAppendBlock(5000, [][]byte{all[3], all[400], st.fresh[5], tx(1, "", "new", 1)}))
	if r.Err != nil || !r.Txs[0].Duplicate || r.Txs[0].Location.Index != 3 || !r.Txs[1].Duplicate || r.Txs[1].Location.Index != 400 ||
		!r.Txs[2].Duplicate || r.Txs[2].Location.Index != 485 || r.Txs[3].Duplicate {
		t.Fatalf("resubmitted transactions: %+v", r.Txs)
	}
	if _, err := s.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A format-2 store is read as it is (unchanged) and converted in place,
// once, by MigrateFile or by opening it for writing; lookups then reach
// both its old index and the epochs.
func TestUpgradeFormat2(t *testing.T) {
	smallEpochs(t, 6, 1) // the conversion point, leaf 480, is inside epoch 7, group 3
	path := format2Store(t)
	before, _ := os.ReadFile(path)
	ro, err := OpenStoreReadOnly(path)
	if err != nil {
		t.Fatalf("read-only open of format 2: %v", err)
	}
	raw, err := ro.Block(150)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := chain.DecodeBlock(raw)
	if rec, err := ro.Tx(chain.TxID(b.Txs[3])); err != nil || rec.Location.Index != 479 {
		t.Fatalf("read-only lookup in format 2: %+v, %v", rec.Location, err)
	}
	ro.Close()
	if _, err := CheckFile(path, 1, 8); err != nil {
		t.Fatalf("CheckFile of format 2: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("reading a format-2 store changed it")
	}
	if v := readFormat(t, path); binary.BigEndian.Uint32(v) != formatTxIdx {
		t.Fatalf("format of the test store: %x", v)
	}

	migrated, err := MigrateFile(path)
	if err != nil || !migrated {
		t.Fatalf("MigrateFile = %v, %v", migrated, err)
	}
	if v := readFormat(t, path); binary.BigEndian.Uint32(v) != FormatVersion {
		t.Fatalf("format after migration: %x", v)
	}
	if migrated, err := MigrateFile(path); err != nil || migrated {
		t.Fatalf("second MigrateFile = %v, %v, want nothing to do", migrated, err)
	}
	checkFormat2Content(t, path)

	opened := format2Store(t)
	s, err := OpenStore(opened, 1, StoreOptions{})
	if err != nil {
		t.Fatalf("open of format 2 for writing: %v", err)
	}
	s.Close()
	if v := readFormat(t, opened); binary.BigEndian.Uint32(v) != FormatVersion {
		t.Fatalf("format after opening for writing: %x", v)
	}
	checkFormat2Content(t, opened)
}

// TestUpgradeHelper is the child process of TestUpgradeKilled.
func TestUpgradeHelper(t *testing.T) {
	path := os.Getenv("QLEDGER_TEST_UPGRADE")
	if path == "" {
		t.Skip("child process of TestUpgradeKilled")
	}
	_, err := MigrateFile(path)
	t.Fatalf("MigrateFile returned (%v) instead of being killed", err)
}

// The in-place conversion of a format-2 store is one bbolt transaction:
// killed, or failing, before it commits, it leaves the store of format
// 2 and whole; run again, it finishes.
func TestUpgradeKilled(t *testing.T) {
	smallEpochs(t, 6, 1)
	path := format2Store(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestUpgradeHelper$")
	cmd.Env = append(os.Environ(), "QLEDGER_TEST_UPGRADE="+path, failpointEnv+"=upgrade-before-stamp=kill")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed\n%s", err, out)
	}
	if v := readFormat(t, path); binary.BigEndian.Uint32(v) != formatTxIdx {
		t.Fatalf("format %x after a kill before the commit", v)
	}
	if _, err := VerifyStoreFile(path); err != nil {
		t.Fatalf("the store after a kill: %v", err)
	}

	setFailpoint("upgrade-before-stamp", "error")
	_, err = MigrateFile(path)
	setFailpoint("upgrade-before-stamp", "")
	if !errors.Is(err, errFailpoint) {
		t.Fatalf("MigrateFile with a failing step = %v", err)
	}
	if v := readFormat(t, path); binary.BigEndian.Uint32(v) != formatTxIdx {
		t.Fatalf("format %x after a failed conversion", v)
	}
	if _, err := MigrateFile(path); err != nil {
		t.Fatalf("migration after the kill: %v", err)
	}
	checkFormat2Content(t, path)
}

// toFormat2 rewrites the index of the closed store at path into format
// 2's layout, as the format-2 build appending its transactions one by
// one would have left it: every transaction in chain order under its
// short key in txidx if free, else under its full ID in txlong.
func toFormat2(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTxEpochs, bucketTxFilter, bucketTxGroups, bucketTxLong} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		short, err := tx.CreateBucket(bucketTxIdx)
		if err != nil {
			return err
		}
		long, err := tx.CreateBucket(bucketTxLong)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketBlocks).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			b, err := chain.DecodeBlock(v)
			if err != nil {
				return err
			}
			for i, raw := range b.Txs {
				id := chain.TxID(raw)
				bk, key := short, id[:txKeyLen]
				if short.Get(key) != nil {
					bk, key = long, id[:]
				}
				if err := bk.Put(key, encodeTxPos(b.Header.Height, uint32(i))); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, formatTxIdx))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store converted from format 2 keeps its old index, and keys shared
// between it, the epochs after it and txlong are all resolved exactly:
// it answers every entry of a log as a store that was always of format
// 3 does.
func TestTxIndexAcrossFormats(t *testing.T) {
	shortTxKeys(t)
	smallEpochs(t, 4, 1)
	before := newEpochStream(5, 30, 1, "before")
	after := newEpochStream(6, 30, 31, "after")
	for i, l := range after.logs { // resubmit transactions from before the conversion
		if i%3 == 0 {
			cmd, err := DecodeCommand(l.Data)
			if err != nil {
				t.Fatal(err)
			}
			l.Data = EncodeAppendBlock(cmd.Timestamp, append(cmd.Txs, before.fresh[i*7%len(before.fresh)]))
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, StoreFile)
	s, err := OpenStore(path, 1, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	applyBatched(New(s, nil), before.logs, 7)
	s.Close()
	toFormat2(t, path)
	if migrated, err := MigrateFile(path); err != nil || !migrated {
		t.Fatalf("MigrateFile = %v, %v", migrated, err)
	}
	if s, err = OpenStore(path, 1, StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	converted := applyBatched(New(s, nil), after.logs, 8)

	always := newFSM(t, 1)
	applyBatched(always, before.logs, 7)
	want := applyBatched(always, after.logs, 8)
	dups := 0
	for i := range want {
		if converted[i].Err != nil || fmt.Sprint(converted[i].Txs) != fmt.Sprint(want[i].Txs) {
			t.Fatalf("entry %d: converted store %+v, format-3 store %+v", i, converted[i], want[i])
		}
		for _, r := range want[i].Txs {
			if r.Duplicate {
				dups++
			}
		}
	}
	if dups < 10 {
		t.Fatalf("only %d duplicates; the test does not test lookups across the conversion", dups)
	}
	var legacy, long int
	err = s.view(func(tx *bolt.Tx) error {
		legacy, long = tx.Bucket(bucketTxIdx).Stats().KeyN, tx.Bucket(bucketTxLong).Stats().KeyN
		return nil
	})
	if err != nil || legacy == 0 || long < 20 {
		t.Fatalf("txidx holds %d keys, txlong %d (%v): the test does not test shared keys across the conversion", legacy, long, err)
	}
	checkAllFound(t, s, append(append([][]byte(nil), before.fresh...), after.fresh...), 0)
	if _, err := s.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// A restore of a format-2 snapshot converts it; the restored store holds
// the snapshot's chain.
func TestRestoreConvertsFormat2Snapshot(t *testing.T) {
	f := newFSM(t, 1)
	snap, err := os.Open(format2Store(t))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if err := f.Restore(snap); err != nil {
		t.Fatalf("Restore of a format-2 snapshot: %v", err)
	}
	if h, ok, err := f.Store().Head(); err != nil || !ok || h.Height != 150 {
		t.Fatalf("head after the restore: %+v %v %v", h, ok, err)
	}
	if _, err := f.Store().Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A full epoch's filter holds every key added to it and passes few of
// the others: fewer than 0.3% (about 0.1% expected) of 100,000 absent
// keys.
func TestFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	f := newFilter(1 << 16)
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(nil, rng.Uint64())
		f.add(keys[i])
	}
	for i, k := range keys {
		if !f.mayHold(k) {
			t.Fatalf("key %d added but not held", i)
		}
	}
	passed := 0
	const absent = 100_000
	for range absent {
		if f.mayHold(binary.BigEndian.AppendUint64(nil, rng.Uint64())) {
			passed++
		}
	}
	if rate := float64(passed) / absent; rate > 0.003 {
		t.Fatalf("%.3f%% of absent keys passed the filter", 100*rate)
	}
	if !filter(make([]byte, filterBlock-1)).mayHold(keys[0]) {
		t.Fatal("a filter that is not well formed excluded a key")
	}
}
