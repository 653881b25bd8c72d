package fsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// filled returns an FSM of group 1 with blocks blocks of two transactions.
func filled(t *testing.T, blocks int) *FSM {
	t.Helper()
	f := newFSM(t, 1)
	for i := 1; i <= blocks; i++ {
		r := apply(f, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(1, "", fmt.Sprint("a", i), 1), tx(1, "", fmt.Sprint("b", i), 2)}))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return f
}

// rawPut overwrites one value of the store, as a bad disk or a hand edit
// would.
func rawPut(t *testing.T, s *Store, bucket []byte, key []byte, edit func(v []byte) []byte) {
	t.Helper()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		v := append([]byte(nil), b.Get(key)...)
		return b.Put(key, edit(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func flipLast(v []byte) []byte { v[len(v)-1] ^= 0x01; return v }

// flipHash returns an edit that flips a bit of the i-th hash of a tile.
func flipHash(i int) func(v []byte) []byte {
	return func(v []byte) []byte { v[i*hashSize+hashSize-1] ^= 0x01; return v }
}

func TestCheckFindsDamage(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, s *Store)
		window  int // CheckRecent's window; 0: the damage is below it; -1: below it, but in a tile the window's log roots are computed from
		height  uint64
		wantErr error
	}{
		{"flipped transaction byte", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketBlocks, heightKey(17), flipLast)
		}, 30, 17, chain.ErrTxRoot},
		{"flipped byte in the head", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketBlocks, heightKey(40), flipLast)
		}, 1, 40, chain.ErrTxRoot},
		{"swapped blocks", func(t *testing.T, s *Store) {
			b5, _ := s.Block(5)
			b6, _ := s.Block(6)
			rawPut(t, s, bucketBlocks, heightKey(5), func([]byte) []byte { return b6 })
			rawPut(t, s, bucketBlocks, heightKey(6), func([]byte) []byte { return b5 })
		}, 0, 5, chain.ErrHeightGap},
		{"flipped header byte below the window", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketBlocks, heightKey(3), func(v []byte) []byte { v[20] ^= 0x80; return v })
		}, 0, 3, nil},
		{"deleted block", func(t *testing.T, s *Store) {
			if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlocks).Delete(heightKey(38)) }); err != nil {
				t.Fatal(err)
			}
		}, 8, 38, chain.ErrHeightGap},
		{"damaged Merkle node", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketTiles, tileKey(0, 0), flipHash(77))
		}, 2, 39, chain.ErrLogRoot},
		{"damaged Merkle leaf below the window", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketTiles, tileKey(0, 0), flipHash(7))
		}, -1, 4, chain.ErrLogRoot},
		{"Merkle tile cut short", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketTiles, tileKey(0, 0), func(v []byte) []byte { return v[:70*hashSize] })
		}, 8, 36, chain.ErrLogRoot},
		{"transaction index entry below the window", func(t *testing.T, s *Store) {
			raw, err := s.Block(3)
			if err != nil {
				t.Fatal(err)
			}
			b, err := chain.DecodeBlock(raw)
			if err != nil {
				t.Fatal(err)
			}
			id := chain.TxID(b.Txs[1])
			other := chain.TxID(b.Txs[0])
			var v []byte
			if err := s.view(func(tx *bolt.Tx) error {
				v = append(v, tx.Bucket(bucketTxEpochs).Get(shortKey(0, other))...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			rawPut(t, s, bucketTxEpochs, shortKey(0, id), func([]byte) []byte { return v })
		}, 0, 3, chain.ErrLogRoot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filled(t, 40)
			s := f.Store()
			if err := s.CheckRecent(40); err != nil {
				t.Fatalf("intact store: %v", err)
			}
			c.damage(t, s)
			if c.window > 0 {
				err := s.CheckRecent(c.window)
				d, ok := DamageOf(err)
				if !ok || d.Height != c.height || c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("CheckRecent(%d) = %v, want damage at %d (%v)", c.window, err, c.height, c.wantErr)
				}
			} else if err := s.CheckRecent(8); c.window == 0 && err != nil {
				t.Fatalf("damage below the window seen by the cheap check: %v", err)
			} else if _, ok := DamageOf(err); c.window < 0 && !ok {
				t.Fatalf("damage in the tile under the window's log roots unseen by the cheap check: %v", err)
			}
			_, err := s.Verify(context.Background(), VerifyOptions{Chunk: 7})
			d, ok := DamageOf(err)
			if !ok || d.Height != c.height || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("Verify = %v, want damage at %d (%v)", err, c.height, c.wantErr)
			}
		})
	}
}

func TestVerifyIntactWithProgress(t *testing.T) {
	f := filled(t, 50)
	var last, calls uint64
	rep, err := f.Store().Verify(context.Background(), VerifyOptions{Chunk: 8, Rate: 100000, Progress: func(done, total uint64) {
		if done < last || total != 50 {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		last = done
		calls++
	}})
	if err != nil || rep.Blocks != 50 || rep.Txs != 100 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if last != 50 || calls != 7 {
		t.Fatalf("progress ended at %d after %d calls", last, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Store().Verify(ctx, VerifyOptions{Chunk: 8}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Verify = %v", err)
	}
}

// TestVerifyFileDamagedPages truncates a closed store or damages both
// its bbolt meta pages: each is reported as damage, never a panic.
func TestVerifyFileDamagedPages(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, path string)
		want string // in the damage found
	}{
		{"truncated file", func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()/3); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"file cut short of its pages", func(t *testing.T, path string) {
			editFile(t, path, func([]byte, int, func(int) bool) {})
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()-4096); err != nil {
				t.Fatal(err)
			}
		}, "cut short"},
		{"a page written where another belongs", func(t *testing.T, path string) {
			// bbolt asserts that a page names its own ID; a misplaced
			// write of another page breaks that (garbage elsewhere in a
			// page can fault inside bbolt, which the race detector's
			// pointer checks make fatal, so it is not tested here).
			editFile(t, path, func(raw []byte, pageSize int, inUse func(int) bool) {
				pg := len(raw)/pageSize - 3
				for ; pg > 2; pg-- {
					if id := binary.LittleEndian.Uint64(raw[pg*pageSize:]); id == uint64(pg) && inUse(pg) {
						break // a branch or leaf page in use
					}
				}
				binary.LittleEndian.PutUint64(raw[pg*pageSize:], uint64(pg+1))
			})
		}, "bbolt"},
		{"a leaf page over another", func(t *testing.T, path string) {
			// The store keeps no freelist on disk (NoFreelistSync), so a
			// freelist cannot be damaged at rest; a page copied over
			// another (its ID mended) breaks the key order bbolt checks.
			editFile(t, path, func(raw []byte, pageSize int, inUse func(int) bool) {
				var leaves []int
				for pg := 2; pg < len(raw)/pageSize; pg++ {
					if binary.LittleEndian.Uint64(raw[pg*pageSize:]) == uint64(pg) && raw[pg*pageSize+8]&0x02 != 0 && inUse(pg) {
						leaves = append(leaves, pg)
					}
				}
				if len(leaves) < 4 {
					t.Fatalf("%d leaf pages", len(leaves))
				}
				a, b := leaves[len(leaves)/2], leaves[len(leaves)/2+1]
				copy(raw[b*pageSize:(b+1)*pageSize], raw[a*pageSize:(a+1)*pageSize])
				binary.LittleEndian.PutUint64(raw[b*pageSize:], uint64(b))
			})
		}, ""},
		{"damaged meta pages", func(t *testing.T, path string) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw[40] ^= 0xff
			raw[4096+40] ^= 0xff
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filled(t, 300)
			path := f.Store().Path()
			if _, err := VerifyFile(path+".missing", 1); err == nil {
				t.Fatal("a missing file verified")
			}
			f.Store().Close()
			if _, err := VerifyFile(path, 1); err != nil {
				t.Fatalf("intact file: %v", err)
			}
			c.edit(t, path)
			_, err := VerifyFile(path, 1)
			if d, ok := DamageOf(err); !ok || !strings.Contains(d.What, c.want) {
				t.Fatalf("VerifyFile = %v, want damage naming %q", err, c.want)
			}
			t.Logf("found: %v", err)
			// A leaf page copied over another may land in an index below
			// the start check's window, where only the full checks look.
			if _, err := CheckFile(path, 1, 1); err == nil && c.name != "a leaf page over another" {
				t.Fatal("the start check passed the damaged file")
			}
			if _, err := VerifyStoreFile(path); err == nil {
				t.Fatal("the offline verification passed the damaged file")
			}
		})
	}
}

// editFile lets edit change a closed store's bytes; it is given the page
// size and the freelist's page of the newer meta page. The file is first
// trimmed to the pages bbolt uses (it grows files ahead of use), so the
// last page is in use.
func editFile(t *testing.T, path string, edit func(raw []byte, pageSize int, inUse func(pg int) bool)) {
	t.Helper()
	// The pages in use: a freed page (an old copy) is no damage when hit.
	used := map[int]bool{}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for pg := 2; int64(pg)*int64(db.Info().PageSize) < tx.Size(); pg++ {
			if info, err := tx.Page(pg); err == nil && info != nil && (info.Type == "leaf" || info.Type == "branch") {
				used[pg] = true
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A meta page: a 16-byte page header, then magic, version, page size
	// and flags (4 bytes each), the root bucket (16), the freelist page,
	// the high-water page and the transaction ID (8 each).
	meta := func(at int) (pageSize int, freelist, hwm, txid uint64) {
		m := raw[at+16:]
		return int(binary.LittleEndian.Uint32(m[8:])), binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:])
	}
	ps, _, hwm, tx0 := meta(0)
	if _, _, hwm1, tx1 := meta(ps); tx1 > tx0 {
		hwm = hwm1
	}
	raw = raw[:int(hwm)*ps]
	edit(raw, ps, func(pg int) bool { return used[pg] })
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotOfDamagedStoreRefused(t *testing.T) {
	f := filled(t, 20)
	f.MarkDamaged(fmt.Errorf("%w: test", ErrDamaged))
	if _, err := f.Snapshot(); !errors.Is(err, ErrDamaged) {
		t.Fatalf("snapshot of a store marked damaged: %v", err)
	}

	// Damage the head unnoticed: Persist checks the newest blocks.
	g := filled(t, 20)
	rawPut(t, g.Store(), bucketBlocks, heightKey(20), flipLast)
	snap, err := g.FullSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); !errors.Is(err, ErrDamaged) || !s.cancelled {
		t.Fatalf("Persist of a damaged head = %v, cancelled %v", err, s.cancelled)
	}
	snap.Release()
}

func TestRestoreRefusesDamagedSnapshot(t *testing.T) {
	src := filled(t, 20)
	// Damage below Persist's window: only the receiver's full check sees it.
	rawPut(t, src.Store(), bucketBlocks, heightKey(2), flipLast)
	snap, err := src.FullSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := filled(t, 5)
	dst.MarkDamaged(fmt.Errorf("%w: test", ErrDamaged))
	err = dst.Restore(io.NopCloser(bytes.NewReader(s.Bytes())))
	if d, ok := DamageOf(err); !ok || d.Height != 2 {
		t.Fatalf("Restore of a damaged snapshot = %v", err)
	}
	if h, _, _ := dst.Store().Head(); h.Height != 5 || dst.Damaged() == nil {
		t.Fatalf("a refused restore changed the store: head %d, damage %v", h.Height, dst.Damaged())
	}
	// An intact snapshot is installed and clears the mark.
	good := filled(t, 9)
	snap, _ = good.FullSnapshot()
	var s2 sink
	if err := snap.Persist(&s2); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(s2.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := dst.Store().Head(); h.Height != 9 || dst.Damaged() != nil {
		t.Fatalf("after restore: head %d, damage %v", h.Height, dst.Damaged())
	}
}

// logSlice is a raft log held in memory, from index first.
type logSlice struct {
	first uint64
	logs  []raft.Log
}

func (l logSlice) FirstIndex() (uint64, error) { return l.first, nil }
func (l logSlice) GetLog(i uint64, out *raft.Log) error {
	if i < l.first || i >= l.first+uint64(len(l.logs)) {
		return raft.ErrLogNotFound
	}
	*out = l.logs[i-l.first]
	return nil
}

func TestRebuildReplacesDamagedStore(t *testing.T) {
	var log logSlice
	log.first = 1
	f := newFSM(t, 1)
	for i := 1; i <= 30; i++ {
		l := raft.Log{Index: uint64(i), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), [][]byte{tx(1, "", fmt.Sprint("p", i), 1)})}
		log.logs = append(log.logs, l)
		f.Apply(&l)
	}
	want, _ := f.Store().Blocks(1, 100)
	rawPut(t, f.Store(), bucketBlocks, heightKey(7), flipLast)
	f.MarkDamaged(fmt.Errorf("%w: test", ErrDamaged))
	upTo := func() uint64 { return 30 }

	// A log that lost its start cannot rebuild: nothing changes.
	short := logSlice{first: 5, logs: log.logs[4:]}
	if err := f.Rebuild(context.Background(), nil, short, upTo); !errors.Is(err, ErrLogIncomplete) {
		t.Fatalf("rebuild from a compacted log: %v", err)
	}
	if f.Damaged() == nil {
		t.Fatal("a failed rebuild cleared the damage mark")
	}
	if err := f.Rebuild(context.Background(), nil, log, upTo); err != nil {
		t.Fatal(err)
	}
	got, _ := f.Store().Blocks(1, 100)
	if len(got) != len(want) || f.Damaged() != nil {
		t.Fatalf("rebuilt %d blocks of %d, damage %v", len(got), len(want), f.Damaged())
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("rebuilt block %d differs", i+1)
		}
	}
	if _, err := os.Stat(f.Store().Path() + ".damaged"); err != nil {
		t.Fatalf("damaged file not kept: %v", err)
	}
	// The FSM applies on after a rebuild.
	if r := apply(f, 31, EncodeAppendBlock(31, [][]byte{tx(1, "", "after", 1)})); r.Err != nil || r.Block.Height != 31 {
		t.Fatalf("apply after rebuild: %+v", r)
	}
}

// Raft's applied index lags the entries it handed the FSM (it advances
// after a whole run of batches): a rebuild whose upTo reports less than
// the FSM was handed still takes every handed entry, so the entries raft
// hands next follow on without a gap.
func TestRebuildTakesEveryHandedEntry(t *testing.T) {
	var log logSlice
	log.first = 1
	f := newFSM(t, 1)
	for i := 1; i <= 30; i++ {
		l := raft.Log{Index: uint64(i), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), [][]byte{tx(1, "", fmt.Sprint("p", i), 1)})}
		log.logs = append(log.logs, l)
		f.ApplyBatch([]*raft.Log{&l})
	}
	lagging := func() uint64 { return 20 } // raft's applied index, behind the 30 handed
	if err := f.Rebuild(context.Background(), nil, log, lagging); err != nil {
		t.Fatal(err)
	}
	if applied, _ := f.Store().AppliedIndex(); applied != 30 {
		t.Fatalf("rebuilt store applied to %d, the FSM was handed 30", applied)
	}
	if r := apply(f, 31, EncodeAppendBlock(31, [][]byte{tx(1, "", "after", 1)})); r.Err != nil || r.Block.Height != 31 {
		t.Fatalf("apply after rebuild: %+v", r)
	}
}

// The page check of a running store (the scrub's) is safe beside
// applies — the race detector watches bbolt's freelist — and finds a
// leaf page copied over another in a store opened for writing.
func TestCheckPagesLive(t *testing.T) {
	f := filled(t, 300)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 301; i <= 400; i++ {
			apply(f, uint64(i), EncodeAppendBlock(int64(i), [][]byte{tx(1, "", fmt.Sprint("c", i), 1)}))
		}
	}()
	for range 5 {
		if err := f.Store().CheckPagesLive(); err != nil {
			t.Fatalf("intact store beside applies: %v", err)
		}
	}
	<-done

	path := f.Store().Path()
	f.Store().Close()
	editFile(t, path, func(raw []byte, pageSize int, inUse func(int) bool) {
		var leaves []int
		for pg := 2; pg < len(raw)/pageSize; pg++ {
			if binary.LittleEndian.Uint64(raw[pg*pageSize:]) == uint64(pg) && raw[pg*pageSize+8]&0x02 != 0 && inUse(pg) {
				leaves = append(leaves, pg)
			}
		}
		a, b := leaves[len(leaves)/2], leaves[len(leaves)/2+1]
		copy(raw[b*pageSize:(b+1)*pageSize], raw[a*pageSize:(a+1)*pageSize])
		binary.LittleEndian.PutUint64(raw[b*pageSize:], uint64(b))
	})
	s, err := OpenStore(path, 1, StoreOptions{NoSync: true})
	if err != nil {
		t.Fatalf("open the damaged store for writing: %v", err)
	}
	defer s.Close()
	err = s.CheckPagesLive()
	if d, ok := DamageOf(err); !ok || !strings.Contains(d.What, "bbolt") {
		t.Fatalf("CheckPagesLive = %v, want bbolt damage", err)
	}
	t.Logf("found: %v", err)
}
