package fsm

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// BenchmarkApplyBlock applies blocks of 64 transactions of 100 bytes,
// with and without fsync, and reports transactions per second.
func BenchmarkApplyBlock(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) {
			s, err := OpenStore(b.TempDir()+"/chain.db", 0, StoreOptions{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := New(s, nil)
			payload := make([]byte, 100)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				txs := make([][]byte, 64)
				for j := range txs {
					payload[0], payload[1], payload[2] = byte(i), byte(i>>8), byte(j)
					txs[j] = tx(0, "", string(payload), byte(i>>16))
				}
				r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), txs)}).(*ApplyResult)
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}

// BenchmarkDiskPerTx grows a store (no fsync) to 1,000·b.N transactions
// of 100 bytes in blocks of 10 and of 100 (-benchtime 300x: 300,000),
// and reports, per transaction, the file's size, the pages each bucket
// holds (leaf and branch pages allocated), the bytes of dirty pages the
// commits wrote (bbolt's PageAlloc), and the apply rate.
func BenchmarkDiskPerTx(b *testing.B) {
	for _, per := range []int{10, 100} {
		b.Run(fmt.Sprintf("block=%d", per), func(b *testing.B) {
			total := 1000 * b.N
			path := b.TempDir() + "/chain.db"
			s, err := OpenStore(path, 0, StoreOptions{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			f := New(s, nil)
			payload := make([]byte, 100)
			pageAlloc := func() int64 { st := s.db.Stats(); return st.TxStats.GetPageAlloc() }
			start := pageAlloc()
			for i := 0; i < total/per; i++ {
				txs := make([][]byte, per)
				for j := range txs {
					n := i*per + j
					payload[0], payload[1], payload[2], payload[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
					txs[j] = tx(0, "", string(payload), 0)
				}
				r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), txs)}).(*ApplyResult)
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "tx/s")
			b.ReportMetric(float64(pageAlloc()-start)/float64(total), "written-B/tx")
			err = s.view(func(tx *bolt.Tx) error {
				return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
					st := bk.Stats()
					if alloc := st.LeafAlloc + st.BranchAlloc; alloc > 0 {
						b.ReportMetric(float64(alloc)/float64(total), string(name)+"-B/tx")
					}
					return nil
				})
			})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
			if fi, err := os.Stat(path); err == nil {
				b.ReportMetric(float64(fi.Size())/float64(total), "file-B/tx")
			}
		})
	}
}

// BenchmarkTxLookup looks up present and absent transaction IDs in a
// store of 200,000 transactions whose index has 781 sealed epochs in 48
// sealed groups (epochs of 2^8 leaves: as many filters as 3.2 M
// transactions have at the format's 2^12), and in the same store
// rewritten to format 2's single tree: what the filter walk costs a
// lookup. With -short (make bench-smoke) the store holds a tenth as
// many, 78 sealed epochs: the same paths, a tenth of the setup.
func BenchmarkTxLookup(b *testing.B) {
	smallEpochs(b, 8, 4)
	total, per := 200_000, 100
	if testing.Short() {
		total = 20_000
	}
	path := b.TempDir() + "/chain.db"
	s, err := OpenStore(path, 0, StoreOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	f := New(s, nil)
	payload := make([]byte, 100)
	var ids []chain.Hash
	for i := 0; i < total/per; i++ {
		txs := make([][]byte, per)
		for j := range txs {
			n := i*per + j
			payload[0], payload[1], payload[2], payload[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
			txs[j] = tx(0, "", string(payload), 0)
			if n%97 == 0 {
				ids = append(ids, chain.TxID(txs[j]))
			}
		}
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), txs)}).(*ApplyResult); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	s.Close()
	lookups := func(b *testing.B, path string) {
		s, err := OpenStoreReadOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for _, present := range []bool{true, false} {
			b.Run(fmt.Sprint("present=", present), func(b *testing.B) {
				err := s.view(func(tx *bolt.Tx) error {
					x := newTxIndex(tx)
					for i := 0; i < b.N; i++ {
						id := ids[i%len(ids)]
						if !present {
							id[0] ^= 0x55
						}
						if _, _, ok, err := x.get(id); err != nil || ok != present {
							return fmt.Errorf("lookup %s: %v %v", id, ok, err)
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	b.Run("format=3", func(b *testing.B) { lookups(b, path) })
	toFormat2(b, path)
	b.Run("format=2", func(b *testing.B) { lookups(b, path) })
}

// BenchmarkStartCost grows a store (no fsync) to 1,000·b.N transactions
// of 100 bytes in blocks of 10 (-benchtime 1000x: 1,000,000), closes it,
// and times what a node's start does with it, in order, warm in the page
// cache as after a process restart: the read-only open and format check
// (MigrateFile), the page walk of every bucket and bbolt's Tx.Check
// (CheckPages), the newest 64 blocks (CheckRecent), and the open for
// writing (OpenStore: without a freelist on disk bbolt rebuilds it by
// walking every page).
func BenchmarkStartCost(b *testing.B) {
	const per = 10
	total := 1000 * b.N
	path := b.TempDir() + "/chain.db"
	s, err := OpenStore(path, 0, StoreOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	f := New(s, nil)
	payload := make([]byte, 100)
	for i := 0; i < total/per; i++ {
		txs := make([][]byte, per)
		for j := range txs {
			n := i*per + j
			payload[0], payload[1], payload[2], payload[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
			txs[j] = tx(0, "", string(payload), 0)
		}
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), txs)}).(*ApplyResult); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	timed := func(name string, step func() error) {
		start := time.Now()
		if err := step(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, name+"-ms")
	}
	b.ResetTimer()
	timed("migrate", func() error { _, err := MigrateFile(path); return err })
	ro, err := OpenStoreReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	timed("pages", ro.CheckPages)
	timed("recent", func() error { return ro.CheckRecent(64) })
	ro.Close()
	timed("open", func() error {
		s, err := OpenStore(path, 0, StoreOptions{})
		if err == nil {
			err = s.Close()
		}
		return err
	})
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
	}
}
