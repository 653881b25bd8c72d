package transparency_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"qledger/chain"
	"qledger/transparency"
)

// memLog is a log of n entries with every perfect node a Frontier emits,
// serving tiles the way the chain store does: only nodes within the log.
type memLog struct {
	entries [][]byte
	nodes   map[[2]uint64]chain.Hash
	log     chain.Frontier
	// served caches tiles by path: a tile never changes once it exists.
	served map[string][]byte
}

func newMemLog() *memLog {
	return &memLog{nodes: map[[2]uint64]chain.Hash{}, served: map[string][]byte{}}
}

func (m *memLog) append(entry []byte) {
	m.entries = append(m.entries, entry)
	m.log.Append(chain.LeafHash(entry), func(level uint8, index uint64, h chain.Hash) {
		m.nodes[[2]uint64{uint64(level), index}] = h
	})
}

// tile serves one tile path as the API does, or an error past the log.
func (m *memLog) tile(path string) ([]byte, error) {
	if b, ok := m.served[path]; ok {
		return b, nil
	}
	t, err := transparency.ParseTile(path)
	if err != nil {
		return nil, err
	}
	level, from, count := transparency.TileRange(t)
	if from+uint64(count) > m.log.Size()>>level {
		return nil, fmt.Errorf("tile %s past the log of %d", path, m.log.Size())
	}
	hs := make([]chain.Hash, count)
	for i := range hs {
		h, ok := m.nodes[[2]uint64{uint64(level), from + uint64(i)}]
		if !ok {
			return nil, fmt.Errorf("node (%d,%d) missing", level, from+uint64(i))
		}
		hs[i] = h
	}
	b := transparency.TileHashes(hs)
	m.served[path] = b
	return b, nil
}

// tileReader is the tlog.TileReader an outside client would write: it
// fetches tiles by their C2SP path and nothing else.
type tileReader struct {
	fetch func(path string) ([]byte, error)
}

func (tileReader) Height() int { return transparency.TileHeight }
func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.fetch(transparency.TilePath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// checkLog proves, with sumdb/tlog alone reading the tiles, that the tree
// of size n has root: records and earlier sizes are proved and checked.
func checkLog(t *testing.T, fetch func(string) ([]byte, error), entries [][]byte, n int64, root chain.Hash, roots func(int64) chain.Hash, probes []int64) {
	t.Helper()
	th := tlog.Hash(root)
	hr := tlog.TileHashReader(tlog.Tree{N: n, Hash: th}, tileReader{fetch})
	got, err := tlog.TreeHash(n, hr)
	if err != nil || got != th {
		t.Fatalf("size %d: tlog.TreeHash = %x, %v; want %x", n, got, err, th)
	}
	for _, i := range probes {
		if i < 0 || i >= n {
			continue
		}
		p, err := tlog.ProveRecord(n, i, hr)
		if err != nil {
			t.Fatalf("size %d: ProveRecord(%d): %v", n, i, err)
		}
		if err := tlog.CheckRecord(p, n, th, i, tlog.RecordHash(entries[i])); err != nil {
			t.Fatalf("size %d: CheckRecord(%d): %v", n, i, err)
		}
		old := i + 1
		tp, err := tlog.ProveTree(n, old, hr)
		if err != nil {
			t.Fatalf("size %d: ProveTree(%d): %v", n, old, err)
		}
		if err := tlog.CheckTree(tp, n, th, old, tlog.Hash(roots(old))); err != nil {
			t.Fatalf("size %d: CheckTree(%d): %v", n, old, err)
		}
	}
}

// TestTilesProveEverySize: for every log size from 1 to 3000 (full and
// partial tiles at levels 0 and 1), tlog reads the tiles, recomputes the
// root the log has, proves entries and earlier sizes, and checks them.
func TestTilesProveEverySize(t *testing.T) {
	max := 3000
	if testing.Short() {
		max = 600
	}
	m := newMemLog()
	roots := []chain.Hash{chain.EmptyRoot()}
	for n := 1; n <= max; n++ {
		m.append(fmt.Appendf(nil, "entry %d", n-1))
		roots = append(roots, m.log.Root())
		size := int64(n)
		probes := []int64{0, size - 1, size / 2, size - 257}
		if n <= 64 {
			probes = probes[:0]
			for i := int64(0); i < size; i++ {
				probes = append(probes, i)
			}
		}
		checkLog(t, m.tile, m.entries, size, m.log.Root(), func(k int64) chain.Hash { return roots[k] }, probes)
	}
}

// TestTilesPastTheLogRefused: a tile not yet complete to its width is
// refused, so a client never caches hashes that could change.
func TestTilesPastTheLogRefused(t *testing.T) {
	m := newMemLog()
	for i := range 300 {
		m.append(fmt.Appendf(nil, "e%d", i))
	}
	for _, p := range []string{"0/001", "0/001.p/45", "1/000.p/2", "1/000"} {
		if _, err := m.tile(p); err == nil {
			t.Errorf("tile %s of a 300-entry log was served", p)
		}
	}
	for _, p := range []string{"0/000", "0/001.p/44", "1/000.p/1"} {
		if _, err := m.tile(p); err != nil {
			t.Errorf("tile %s: %v", p, err)
		}
	}
}

func TestParseTile(t *testing.T) {
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{"0/000", true}, {"0/x001/234", true}, {"2/x001/x002/003.p/7", true},
		{"entries/000", false}, {"data/000", false}, {"0/0", false}, {"0/001.p/256", false},
		{"0/001.p/0", false}, {"8/000", false}, {"-1/000", false}, {"0/1234", false}, {"", false},
	} {
		_, err := transparency.ParseTile(c.path)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, transparency.ErrTile) {
			t.Errorf("ParseTile(%q) = %v, want ok %v", c.path, err, c.ok)
		}
	}
}

// TestCheckpointVerifiesWithNote: a checkpoint signed with a note key
// derived from a P-256 certificate key opens with sumdb/note under its
// verifier key, carries the size, root and extensions, and no other key
// opens it.
func TestCheckpointVerifiesWithNote(t *testing.T) {
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := transparency.NoteKey(certKey)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := transparency.NoteKey(certKey)
	if !key.Equal(again) {
		t.Fatal("the note key is not a function of the certificate key")
	}
	origin, err := transparency.Origin(transparency.ClusterName("test cluster"), 1)
	if err != nil || origin != "qledger/test-cluster/group/1" {
		t.Fatalf("origin %q, %v", origin, err)
	}
	signer, vkey, err := transparency.Signer(origin, key)
	if err != nil {
		t.Fatal(err)
	}
	root := chain.LeafHash([]byte("x"))
	cp := transparency.Checkpoint{Origin: origin, Size: 1, Root: root, Extensions: []string{"height 1"}}
	signed, err := transparency.Sign(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	got, err := transparency.ParseCheckpoint(n.Text)
	if err != nil || got.Origin != origin || got.Size != 1 || got.Root != root || len(got.Extensions) != 1 {
		t.Fatalf("opened %+v, %v", got, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	okey, _ := transparency.NoteKey(other)
	_, ovkey, _ := transparency.Signer(origin, okey)
	ov, _ := note.NewVerifier(ovkey)
	if _, err := note.Open(signed, note.VerifierList(ov)); err == nil {
		t.Fatal("another node's key opened the checkpoint")
	}
	tampered := strings.Replace(string(signed), "\n1\n", "\n2\n", 1)
	if _, err := note.Open([]byte(tampered), note.VerifierList(v)); err == nil {
		t.Fatal("a checkpoint with another size verified")
	}
}

func TestParseEntryBundle(t *testing.T) {
	for _, c := range []struct {
		path string
		n    int64
		w    int
		ok   bool
	}{
		{"entries/000", 0, 256, true}, {"entries/x001/234", 1234, 256, true}, {"entries/001.p/7", 1, 7, true},
		{"entries/0", 0, 0, false}, {"entries/001.p/256", 0, 0, false}, {"entries/001.p/0", 0, 0, false},
		{"0/000", 0, 0, false}, {"data/000", 0, 0, false}, {"entries/", 0, 0, false}, {"entries/-01", 0, 0, false},
	} {
		bt, err := transparency.ParseEntryBundle(c.path)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, transparency.ErrTile) {
			t.Errorf("ParseEntryBundle(%q) = %v, want ok %v", c.path, err, c.ok)
			continue
		}
		if c.ok && (bt.N != c.n || bt.W != c.w || transparency.EntryBundlePath(bt) != c.path) {
			t.Errorf("ParseEntryBundle(%q) = N %d W %d path %q", c.path, bt.N, bt.W, transparency.EntryBundlePath(bt))
		}
	}
}

// TestEntryBundleRoundTrip: entries up to MaxEntrySize (the empty one
// too) come back as they went in; one byte more is ErrEntryTooLarge; a
// truncated bundle is ErrBundle.
func TestEntryBundleRoundTrip(t *testing.T) {
	entries := [][]byte{[]byte("a"), {}, make([]byte, transparency.MaxEntrySize), []byte("last")}
	b, err := transparency.EntryBundle(entries)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[1] != 1 || b[2] != 'a' || b[5] != 0xff || b[6] != 0xff {
		t.Fatalf("not big-endian uint16 prefixes: % x", b[:8])
	}
	got, err := transparency.SplitEntryBundle(b)
	if err != nil || len(got) != len(entries) {
		t.Fatalf("split: %d entries, %v", len(got), err)
	}
	for i := range entries {
		if string(got[i]) != string(entries[i]) {
			t.Fatalf("entry %d changed", i)
		}
	}
	if _, err := transparency.EntryBundle([][]byte{nil, make([]byte, transparency.MaxEntrySize+1)}); !errors.Is(err, transparency.ErrEntryTooLarge) || !strings.Contains(err.Error(), "entry 1 ") {
		t.Fatalf("oversized entry: %v", err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], {0}, {0, 5, 'x'}} {
		if _, err := transparency.SplitEntryBundle(bad); !errors.Is(err, transparency.ErrBundle) {
			t.Errorf("split % x: %v", bad[:min(len(bad), 8)], err)
		}
	}
}
