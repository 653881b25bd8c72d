package fsm

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// format1Store copies testdata/format1.db.gz — a store of group 1
// written by the format-1 build (120 blocks, 360 transactions, every
// seventh with an idempotency key "key-N") — to a temporary file.
func format1Store(t *testing.T) string { return testdataStore(t, "format1.db.gz") }

// testdataStore unpacks the gzipped store testdata/name to a temporary
// file and returns its path.
func testdataStore(t *testing.T, name string) string {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), StoreFile)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func setFormat(t *testing.T, path string, v []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		if v == nil {
			return tx.Bucket(bucketMeta).Delete(keyFormat)
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, v)
	}); err != nil {
		t.Fatal(err)
	}
}

func readFormat(t *testing.T, path string) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	db.View(func(tx *bolt.Tx) error { v = append(v, tx.Bucket(bucketMeta).Get(keyFormat)...); return nil })
	return v
}

// A new store is stamped FormatVersion; a store of format 1 (stamped, or
// written before versioning) and one of a later format are refused,
// naming the version and what to do, without being changed.
func TestStoreFormatVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.db")
	s, err := OpenStore(path, 1, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v := readFormat(t, path); len(v) != 4 || binary.BigEndian.Uint32(v) != FormatVersion {
		t.Fatalf("format of a new store: %x", v)
	}
	if s, err = OpenStore(path, 1, StoreOptions{}); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()

	for _, c := range []struct {
		name string
		v    []byte
		want string
	}{
		{"format 1", binary.BigEndian.AppendUint32(nil, 1), fmt.Sprintf("version 1, this build reads version %d", FormatVersion)},
		{"written before versioning", nil, fmt.Sprintf("version 1, this build reads version %d", FormatVersion)},
		{"a later format", binary.BigEndian.AppendUint32(nil, FormatVersion+1), fmt.Sprintf("version %d, this build reads version %d", FormatVersion+1, FormatVersion)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := format1Store(t)
			setFormat(t, p, c.v)
			before, _ := os.ReadFile(p)
			if _, err := OpenStore(p, 1, StoreOptions{}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("open = %v, want ErrFormat saying %q", err, c.want)
			}
			if _, err := OpenStoreReadOnly(p); !errors.Is(err, ErrFormat) {
				t.Fatalf("read-only open = %v, want ErrFormat", err)
			}
			if _, err := CheckFile(p, 1, 8); !errors.Is(err, ErrFormat) || errors.Is(err, ErrDamaged) {
				t.Fatalf("CheckFile = %v, want ErrFormat, not damage", err)
			}
			if after, _ := os.ReadFile(p); !bytes.Equal(after, before) {
				t.Fatal("a refused open changed the file")
			}
		})
	}
}

// checkFormat1Content checks that the store at path holds the chain the
// format-1 test store holds, fully verified, with every transaction and
// idempotency key found, and that it keeps appending.
func checkFormat1Content(t *testing.T, path string) {
	t.Helper()
	if rep, err := VerifyStoreFile(path); err != nil || rep.Blocks != 120 || rep.Txs != 360 {
		t.Fatalf("VerifyStoreFile = %+v, %v", rep, err)
	}
	s, err := OpenStore(path, 1, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blocks, ierr := s.AllBlocks()
	n := 0
	for h, raw := range blocks {
		b, err := chain.DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		for i, txb := range b.Txs {
			rec, err := s.Tx(chain.TxID(txb))
			want := TxLocation{Height: h, Pos: uint32(i), Index: uint64(n)}
			if err != nil || rec.Location != want || !bytes.Equal(rec.TxBytes, txb) {
				t.Fatalf("transaction %d: %+v, %v; want at %+v", n, rec.Location, err, want)
			}
			if err := chain.VerifyInclusion(rec.Location.Index, rec.TreeSize, rec.LeafHash, rec.Proof, rec.Root); err != nil {
				t.Fatalf("transaction %d: %v", n, err)
			}
			if n%7 == 0 {
				id, loc, ok, err := s.LookupKey("", fmt.Sprint("key-", n))
				if err != nil || !ok || id != chain.TxID(txb) || loc != want {
					t.Fatalf("key-%d: %s %+v %v %v", n, id, loc, ok, err)
				}
			}
			n++
		}
	}
	if err := ierr(); err != nil || n != 360 {
		t.Fatalf("read %d transactions: %v", n, err)
	}
	f := New(s, nil)
	r := apply(f, 121, EncodeAppendBlock(2000, [][]byte{tx(1, "key-0", "format 1 transaction 0", 0), tx(1, "", "after the migration", 1)}))
	if r.Err != nil || r.Block == nil || !r.Txs[0].Duplicate || r.Txs[0].Location.Height != 1 || r.Txs[1].Location.Index != 360 {
		t.Fatalf("apply after the migration: %+v", r)
	}
	if _, err := s.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateFormat1(t *testing.T) {
	for _, stamped := range []bool{true, false} {
		t.Run(fmt.Sprint("stamped=", stamped), func(t *testing.T) {
			path := format1Store(t)
			if !stamped {
				setFormat(t, path, nil)
			}
			migrated, err := MigrateFile(path)
			if err != nil || !migrated {
				t.Fatalf("MigrateFile = %v, %v", migrated, err)
			}
			if v := readFormat(t, path); binary.BigEndian.Uint32(v) != FormatVersion {
				t.Fatalf("format after migration: %x", v)
			}
			if _, err := os.Stat(path + ".migrate"); !os.IsNotExist(err) {
				t.Fatalf("temporary file left: %v", err)
			}
			checkFormat1Content(t, path)
			if migrated, err := MigrateFile(path); err != nil || migrated {
				t.Fatalf("second MigrateFile = %v, %v, want nothing to do", migrated, err)
			}
		})
	}
}

// A format-1 store whose blocks do not make the log it records is damage,
// and the migration leaves it as it was.
func TestMigrateRefusesDamage(t *testing.T) {
	path := format1Store(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocks)
		v := append([]byte(nil), b.Get(heightKey(50))...)
		v[len(v)-1] ^= 1
		return b.Put(heightKey(50), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := MigrateFile(path); !errors.Is(err, ErrDamaged) {
		t.Fatalf("MigrateFile of a damaged store = %v, want ErrDamaged", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("a refused migration changed the file")
	}
}

// TestMigrateHelper is the child process of TestMigrateKilled.
func TestMigrateHelper(t *testing.T) {
	path := os.Getenv("QLEDGER_TEST_MIGRATE")
	if path == "" {
		t.Skip("child process of TestMigrateKilled")
	}
	_, err := MigrateFile(path)
	t.Fatalf("MigrateFile returned (%v) instead of being killed", err)
}

// A migration killed at each of its steps leaves either the format-1 store
// as it was or the complete new one; a migration run again then finishes.
func TestMigrateKilled(t *testing.T) {
	for _, fp := range []string{"migrate-after-copy", "migrate-before-rename", "migrate-after-rename"} {
		t.Run(fp, func(t *testing.T) {
			path := format1Store(t)
			before, _ := os.ReadFile(path)
			cmd := exec.Command(os.Args[0], "-test.run", "^TestMigrateHelper$")
			cmd.Env = append(os.Environ(), "QLEDGER_TEST_MIGRATE="+path, failpointEnv+"="+fp+"=kill")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed\n%s", err, out)
			}
			after, _ := os.ReadFile(path)
			v := readFormat(t, path)
			switch binary.BigEndian.Uint32(v) {
			case 1:
				if fp == "migrate-after-rename" || !bytes.Equal(after, before) {
					t.Fatalf("format 1 after a kill at %s, changed=%v", fp, !bytes.Equal(after, before))
				}
			case FormatVersion:
				if fp != "migrate-after-rename" {
					t.Fatalf("format %d after a kill at %s, before the rename", FormatVersion, fp)
				}
			default:
				t.Fatalf("format %x after a kill at %s", v, fp)
			}
			if _, err := MigrateFile(path); err != nil {
				t.Fatalf("migration after the kill: %v", err)
			}
			checkFormat1Content(t, path)
		})
	}
}

// A restore of a format-1 snapshot converts it; the restored store holds
// the snapshot's chain.
func TestRestoreConvertsFormat1Snapshot(t *testing.T) {
	f := newFSM(t, 1)
	snap, err := os.Open(format1Store(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(snap); err != nil {
		t.Fatalf("Restore of a format-1 snapshot: %v", err)
	}
	if h, ok, err := f.Store().Head(); err != nil || !ok || h.Height != 120 {
		t.Fatalf("head after the restore: %+v %v %v", h, ok, err)
	}
	if _, err := f.Store().Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
