package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// migrateBatch is how many keys (or blocks) one write transaction of a
// migration copies (or indexes): bbolt holds a transaction's pages in
// memory until it commits.
const migrateBatch = 4096

// MigrateFile converts the chain store at path, which no process may
// hold open, from format 1 or 2 to FormatVersion, and reports whether it
// did. A store already of FormatVersion is left as it is; any other
// version is refused (ErrFormat). A format-2 store is converted in
// place, in one bbolt transaction (upgradeTxIdx): a crash leaves it of
// format 2 or 3, both whole. A format-1 conversion writes a new file beside it
// (PATH.migrate) — every bucket but the two format 1 kept its Merkle
// nodes and transaction index in, then the Merkle tiles and the compact
// transaction index computed from the blocks — checks that the tiles give
// the log root the store records, syncs it, and only then renames it over
// the old file and syncs the directory. A crash before the rename leaves
// the old store as it was (a leftover PATH.migrate is removed by the next
// attempt); after it, the new one is complete. A store whose blocks do
// not give its recorded log, or that bbolt cannot open or read, is
// damage (ErrDamaged), and nothing changes.
func MigrateFile(path string) (migrated bool, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	src, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return false, fmt.Errorf("%w: migrate %s: %w", ErrDamaged, path, err) // as CheckFile reports it
	}
	defer func() {
		if src != nil {
			src.Close()
		}
	}()
	var version uint32
	err = src.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return damaged(0, "%s is not a chain store", path)
		}
		if version = formatOf(meta); version != 1 && version != formatTxIdx && version != FormatVersion {
			return checkFormat(meta)
		}
		return nil
	})
	if err != nil || version == FormatVersion {
		return false, err
	}
	if version == formatTxIdx {
		src.Close()
		src = nil
		if err := upgradeFile(path); err != nil {
			return false, fmt.Errorf("fsm: migrate %s: %w", path, err)
		}
		return true, nil
	}
	tmp := path + ".migrate"
	os.Remove(tmp)
	if err := convertV1(src, tmp); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("fsm: migrate %s: %w", path, err)
	}
	src.Close()
	src = nil
	if err := failpoint("migrate-before-rename"); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("fsm: migrate %s: %w", path, err)
	}
	if err := failpoint("migrate-after-rename"); err != nil {
		return false, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return false, fmt.Errorf("fsm: migrate %s: %w", path, err)
	}
	return true, nil
}

// upgradeFile converts the format-2 store at path in place and syncs it.
func upgradeFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if formatOf(tx.Bucket(bucketMeta)) != formatTxIdx {
			return nil // converted meanwhile
		}
		return upgradeTxIdx(tx)
	})
	return errors.Join(err, db.Close())
}

// convertV1 writes the FormatVersion form of the format-1 store src into
// a new file at dst and syncs it.
func convertV1(src *bolt.DB, dst string) error {
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer out.Close()
	err = out.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketTxIdx); err != nil {
			return err
		}
		return createBuckets(tx)
	})
	if err != nil {
		return err
	}
	err = src.View(func(in *bolt.Tx) error {
		err := in.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.Equal(name, bucketNodesV1) || bytes.Equal(name, bucketTxsV1) {
				return nil
			}
			return copyBucket(out, name, b)
		})
		if err != nil {
			return err
		}
		if err := failpoint("migrate-after-copy"); err != nil {
			return err
		}
		return indexV1(out, in)
	})
	if err != nil {
		return err
	}
	err = out.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion))
	})
	if err != nil {
		return err
	}
	return out.Sync()
}

// copyBucket copies every key of b into bucket name of out, migrateBatch
// keys per write transaction. Format 1 has no nested buckets.
func copyBucket(out *bolt.DB, name []byte, b *bolt.Bucket) error {
	c := b.Cursor()
	k, v := c.First()
	for k != nil {
		err := out.Update(func(tx *bolt.Tx) error {
			ob, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			ob.FillPercent = appendFill // keys arrive in order
			for n := 0; k != nil && n < migrateBatch; k, v = c.Next() {
				if v == nil {
					return damaged(0, "bucket %s holds a nested bucket %x, which format 1 never wrote", name, k)
				}
				if err := ob.Put(k, v); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// indexV1 computes the Merkle tiles and the transaction index of every
// block of in and writes them to out, then checks that the log they make
// is the one in's meta records. The index entries are put in key order,
// up to migrateIndexBatch at a time: put at random, a million of them cost
// minutes, as bbolt shifts the growing nodes of one transaction.
func indexV1(out *bolt.DB, in *bolt.Tx) error {
	st, err := readState(in)
	if err != nil {
		return damaged(0, "%v", err)
	}
	var (
		log     chain.Frontier
		pending []txEntry
	)
	c := in.Bucket(bucketBlocks).Cursor()
	k, v := c.First()
	for k != nil {
		err := out.Update(func(tx *bolt.Tx) error {
			tiles := newTileWriter(tx)
			for n := 0; k != nil && n < migrateBatch && len(pending) < migrateIndexBatch; k, v = c.Next() {
				if len(k) != 8 {
					return damaged(0, "corrupt block key %x", k)
				}
				h := binary.BigEndian.Uint64(k)
				b, err := chain.DecodeBlock(v)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrDamaged, &chain.VerifyError{Height: h, Err: chain.ErrDecoding, Detail: err.Error()})
				}
				for i, raw := range b.Txs {
					log.Append(chain.LeafHash(raw), tiles.emit)
					pending = append(pending, txEntry{id: chain.TxID(raw), height: h, pos: uint32(i)})
				}
				if log.Size() != b.Header.LogSize {
					return damaged(h, "block ends the log at size %d, its header says %d", log.Size(), b.Header.LogSize)
				}
				n++
			}
			return tiles.flush()
		})
		if err != nil {
			return err
		}
		if len(pending) >= migrateIndexBatch || k == nil {
			if err := putSorted(out, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
	}
	if log.Size() != st.log.Size() || log.Root() != st.log.Root() {
		return damaged(0, "the blocks make a log of %d transactions with root %s; the store records %d with root %s",
			log.Size(), log.Root(), st.log.Size(), st.log.Root())
	}
	return nil
}

// migrateIndexBatch is how many transaction index entries a migration
// sorts and puts together.
const migrateIndexBatch = 1 << 20

type txEntry struct {
	id     chain.Hash
	height uint64
	pos    uint32
}

// putSorted indexes entries (in chain order) in the order of their keys,
// in the unpartitioned txidx of format 2, which no append writes again
// (txindex.go); of entries sharing a key the first in chain order keeps
// it, the others go under their full ID, as format 2 appending them one
// by one would have.
func putSorted(out *bolt.DB, entries []txEntry) error {
	slices.SortStableFunc(entries, func(a, b txEntry) int { return bytes.Compare(a.id[:txKeyLen], b.id[:txKeyLen]) })
	for len(entries) > 0 {
		n := min(len(entries), 1<<16)
		err := out.Update(func(tx *bolt.Tx) error {
			short, long := tx.Bucket(bucketTxIdx), tx.Bucket(bucketTxLong)
			short.FillPercent = 1 // keys arrive in order and are never written again
			for _, e := range entries[:n] {
				v := encodeTxPos(e.height, e.pos)
				if short.Get(e.id[:txKeyLen]) != nil {
					if err := long.Put(e.id[:], v); err != nil {
						return err
					}
				} else if err := short.Put(e.id[:txKeyLen], v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}
