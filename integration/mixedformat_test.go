package integration

import (
	"context"
	enc "encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"qledger/fsm"
)

// olderFormats are the last revision of this repository of each older
// chain store format (the commit before the next format landed): the
// older releases of the mixed-version upgrade test.
var olderFormats = []struct {
	format int
	rev    string
}{
	{1, "229b7090cd7ecbd9fe8409af4104ac58939e1d73"},
	{2, "3009bf3e5b10eed40725be8ea04c38c6baecdb27"},
}

// buildRevision compiles cmd/qledger as of git revision rev of this
// repository, or skips the test where that history is absent (a source
// tarball, a shallow clone).
func buildRevision(t *testing.T, rev string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", rev+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("revision %s is not in this checkout's git history, so the older release cannot be built: %v %s", rev, err, out)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	archive := exec.Command("sh", "-c", `mkdir -p "$2" && git -C "$1" archive --format=tar "$3" | tar -x -C "$2"`, "sh", root, src, rev)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("source of %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(dir, "qledger-"+rev[:8])
	build := exec.Command("go", "build", "-o", bin, "./cmd/qledger")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of %s: %v\n%s", rev, err, out)
	}
	return bin
}

// TestOlderFormatNodeNeedingSnapshotDuringUpgrade is a rolling upgrade
// from the last release of an older chain store format in which a node
// still on that release must be sent a snapshot: a group of three starts
// on the old release; two nodes are upgraded (their stores converted);
// the third, still old, misses more than the leader's log keeps, so the
// upgraded leader sends it its store in the current format
// (InstallSnapshot). The old node refuses it by name ("version N, this
// build reads version M"), keeps running with its store unchanged, and
// the group goes on writing without it. Upgraded in turn, it catches up;
// every replica then verifies, is equal, and holds every acknowledged
// write.
func TestOlderFormatNodeNeedingSnapshotDuringUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds older releases")
	}
	for _, of := range olderFormats {
		t.Run(fmt.Sprintf("format %d", of.format), func(t *testing.T) {
			old := buildRevision(t, of.rev)
			l := newCrashLabOf(t, old)
			l.write(10)
			a, b, c := l.nodes[0], l.nodes[1], l.nodes[2]
			ctx := context.Background()
			for _, p := range []*proc{a, b} {
				p.signal(syscall.SIGKILL)
				p.bin = "" // this build
				l.restart(p)
				waitFor(t, "the upgraded node ready", time.Minute, func() bool { return ready(ctx, p.client()) })
				l.write(5)
			}
			c.signal(syscall.SIGKILL)
			l.write(120) // the upgraded leader snapshots and compacts past c
			l.restart(c) // still the old release
			refusal := fmt.Sprintf("fsm: unsupported chain store format: version %d, this build reads version %d", fsm.FormatVersion, of.format)
			waitFor(t, "the old node to refuse the snapshot by name", 2*time.Minute, func() bool {
				return strings.Contains(c.log.String(), refusal)
			})
			l.write(10) // the group goes on without it
			if !c.running() {
				t.Fatalf("the old node exited after refusing the snapshot")
			}
			c.signal(syscall.SIGKILL)
			if v := storeFormat(t, filepath.Join(c.dir, fsm.StoreFile)); v != of.format {
				t.Fatalf("the refusing node's store is of format %d, want its store of format %d kept", v, of.format)
			}
			c.bin = ""
			l.restart(c)
			l.write(10)
			l.check()
		})
	}
}

// storeFormat reads the chain store format a stopped node's store file
// records (meta/format; none is format 1). It reads the record itself:
// this build opens a format-2 store read-only as it is, so whether an
// open succeeds does not tell format 2 from 3.
func storeFormat(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v := -1
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return fmt.Errorf("%s is not a chain store", path)
		}
		switch f := meta.Get([]byte("format")); {
		case f == nil:
			v = 1
		case len(f) == 4:
			v = int(enc.BigEndian.Uint32(f))
		default:
			return fmt.Errorf("%s: unreadable format record %x", path, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
