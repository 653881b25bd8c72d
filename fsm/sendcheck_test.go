package fsm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noSendCopies fails if a temporary copy of a sent snapshot is left
// beside f's store.
func noSendCopies(t *testing.T, f *FSM) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(f.store.path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".send-") {
			t.Fatalf("temporary copy %s left behind", e.Name())
		}
	}
}

// A snapshot is sent (SnapshotStore.Open, as InstallSnapshot reads it)
// only if it verifies in full: damage below the newest blocks Persist
// checks ends the stream with ErrDamaged before its end, for a copy and
// for a reference to a durable store alike; a healthy one streams whole.
func TestSendVerifiesSnapshotInFull(t *testing.T) {
	cases := []struct {
		name string
		fsm  func(t *testing.T) *FSM
	}{
		{"copy", func(t *testing.T) *FSM { return filled(t, 60) }},
		{"reference", func(t *testing.T) *FSM {
			f := newRefFSM(t, 1)
			fill(f, 1, 60)
			return f
		}},
	}
	for _, c := range cases {
		for _, damage := range []bool{false, true} {
			name := c.name + "/healthy"
			if damage {
				name = c.name + "/damaged below the window"
			}
			t.Run(name, func(t *testing.T) {
				f := c.fsm(t)
				if damage {
					rawPut(t, f.Store(), bucketBlocks, heightKey(3), flipLast)
				}
				_, wrapped := snapStore(t, f)
				id, err := persist(t, f, wrapped, 60)
				if err != nil {
					t.Fatalf("persist: %v", err) // the window is intact
				}
				meta, rc, err := wrapped.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				noSendCopies(t, f)
				if !damage {
					if err != nil || int64(len(got)) != meta.Size {
						t.Fatalf("healthy snapshot: %d of %d bytes, %v", len(got), meta.Size, err)
					}
					return
				}
				if !errors.Is(err, ErrDamaged) {
					t.Fatalf("damaged snapshot sent: %d of %d bytes, %v", len(got), meta.Size, err)
				}
				if int64(len(got)) >= meta.Size {
					t.Fatalf("all %d bytes of a damaged snapshot went out", len(got))
				}
			})
		}
	}
}

// WriteSnapshot (a peer's repair, a backup) writes a copy that verifies,
// or fails with ErrDamaged leaving the writer short of a whole copy.
func TestWriteSnapshotVerifiesInFull(t *testing.T) {
	f := filled(t, 60)
	var good bytes.Buffer
	if err := f.WriteSnapshot(&good); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, good.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFile(path, 1); err != nil {
		t.Fatalf("written snapshot does not verify: %v", err)
	}

	rawPut(t, f.Store(), bucketBlocks, heightKey(3), flipLast)
	var bad bytes.Buffer
	if err := f.WriteSnapshot(&bad); !errors.Is(err, ErrDamaged) {
		t.Fatalf("snapshot of a store damaged below the window: %v", err)
	}
	if bad.Len() >= good.Len() {
		t.Fatalf("%d bytes of a damaged snapshot written, a whole one is %d", bad.Len(), good.Len())
	}
	noSendCopies(t, f)
}
