package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"qledger/chain"
	"qledger/shard"
)

// storeFake is a node API that stores uploaded segments as shard
// transactions on disk and serves them back, a page as asked for (from,
// limit) or all, streaming its answer, as group i's one-block log: a data
// transaction and then the segments. It
// answers one request at a time and holds one segment at a time, so that
// it adds little to the client's memory in measurements.
type storeFake struct {
	groups int
	dir    string
	// serial is held while a request is answered; mu guards shares.
	serial sync.Mutex
	mu     sync.Mutex
	// shares maps "id/i" to the leaf hashes of its segments' transactions,
	// whose bytes are in files dir/id-i-k.
	shares map[string][]chain.Hash
}

func newStoreFake(t *testing.T, groups int) *storeFake {
	return &storeFake{groups: groups, dir: t.TempDir(), shares: map[string][]chain.Hash{}}
}

func (f *storeFake) client(t *testing.T) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(ClusterStatus{Groups: make([]GroupStatus, f.groups)})
	})
	mux.HandleFunc("POST /v1/data/{id}/shares/{i}", f.put)
	mux.HandleFunc("GET /v1/data/{id}/shares/{i}", f.get)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *storeFake) fail(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ErrorBody{Code: code, Error: msg})
}

func (f *storeFake) put(w http.ResponseWriter, r *http.Request) {
	f.serial.Lock()
	defer f.serial.Unlock()
	id := r.PathValue("id")
	i, _ := strconv.Atoi(r.PathValue("i"))
	var up ShareUpload
	if err := json.NewDecoder(r.Body).Decode(&up); err != nil {
		f.fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	rec := shard.Record{DataID: id, Index: i, Shares: up.Shares, Threshold: up.Threshold, Scheme: up.Scheme, Segment: up.Segment,
		Segments: up.Segments, ShareSize: up.ShareSize, Uploader: "tester", Description: up.Description, Digest: up.Digest, Readers: up.Readers, Bytes: up.Bytes}
	h, _ := hex.DecodeString(up.ShareHash)
	copy(rec.ShareHash[:], h)
	if err := rec.Validate(); err != nil {
		f.fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	tx := shardTx(i, rec)
	raw := tx.Encode()
	if err := os.WriteFile(filepath.Join(f.dir, fmt.Sprintf("%s-%d-%d", id, i, up.Segment)), raw, 0o600); err != nil {
		f.fail(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	f.mu.Lock()
	key := fmt.Sprintf("%s/%d", id, i)
	if len(f.shares[key]) != up.Segment {
		f.mu.Unlock()
		f.fail(w, http.StatusBadRequest, CodeBadRequest, "segment out of order")
		return
	}
	f.shares[key] = append(f.shares[key], chain.LeafHash(raw))
	f.mu.Unlock()
	json.NewEncoder(w).Encode(Receipt{ID: chain.TxID(raw).String(), Group: i, Height: 1, Index: uint64(up.Segment + 1)})
}

func (f *storeFake) get(w http.ResponseWriter, r *http.Request) {
	f.serial.Lock()
	defer f.serial.Unlock()
	id := r.PathValue("id")
	i, _ := strconv.Atoi(r.PathValue("i"))
	f.mu.Lock()
	segs := f.shares[fmt.Sprintf("%s/%d", id, i)]
	f.mu.Unlock()
	if len(segs) == 0 {
		f.fail(w, http.StatusNotFound, CodeNotFound, "no such item")
		return
	}
	before := (&chain.Tx{Kind: chain.TxData, Group: uint32(i), Payload: []byte("before")}).Encode()
	leaves := append([]chain.Hash{chain.LeafHash(before)}, segs...)
	root := chain.RootFromLeaves(leaves)
	hd := chain.Header{Version: chain.BlockVersion, Group: uint32(i), Height: 1, Timestamp: 1, TxRoot: root, TxCount: uint32(len(leaves)), LogSize: uint64(len(leaves)), LogRoot: root}
	// As the node does: the item, each segment asked for, then the head.
	from, limit := max(intQuery(r, "from"), 0), intQuery(r, "limit")
	if limit < 0 {
		limit = len(segs)
	}
	io.WriteString(w, `{"item":{},"segments":[`)
	for k := from; k < min(from+limit, len(segs)); k++ {
		raw, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("%s-%d-%d", id, i, k)))
		if err != nil {
			panic(err)
		}
		path, _ := chain.InclusionProofFromLeaves(uint64(k+1), leaves)
		hashes := make([]string, len(path))
		for j, h := range path {
			hashes[j] = h.String()
		}
		b, _ := json.Marshal(TxResponse{ID: chain.TxID(raw).String(), Group: i, Height: 1, Index: uint64(k + 1), TxBytes: raw, LeafHash: leaves[k+1].String(),
			Proof: Proof{LeafIndex: uint64(k + 1), TreeSize: uint64(len(leaves)), Root: root.String(), Hashes: hashes}})
		if k > from {
			io.WriteString(w, ",")
		}
		w.Write(b)
	}
	b, _ := json.Marshal(HeadFromHeader(hd))
	fmt.Fprintf(w, `],"head":%s}`, b)
}

// raceEnabled is set under the race detector, which makes moving large
// items through the client too slow for a unit test. `make test` runs this
// package once more without it (FULL_SIZE_PKGS), so CI checks them.
var raceEnabled bool

// stream is n bytes of deterministic pseudo-random data, generated as it
// is read, and hashed.
func stream(n int64, seed byte) (io.Reader, hash.Hash) {
	h := sha256.New()
	return io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{seed}), n), h), h
}

// hashWriter hashes and counts what is written to it; it cannot be
// rewound.
type hashWriter struct {
	h hash.Hash
	n int64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("%s holds %d files (%v), want none", dir, len(ents), err)
	}
}

// TestStreamRoundTrip: PutReader spools and uploads shares of several
// segments, GetDataTo spools, verifies and recovers them, into a writer
// or a file, and both leave no temporary file behind.
func TestStreamRoundTrip(t *testing.T) {
	tests := []struct {
		scheme string
		size   int64
		t, n   int
		// segs: the segments of each share.
		segs int
	}{
		{"dispersal", 1<<20 + 12345, 1, 2, 2}, // shares of ~1 MiB
		{"dispersal", 1600 << 10, 2, 3, 2},    // ~800 KiB
		{"paper", 800 << 10, 1, 2, 2},         // ~813 KiB
		{"asmuth-bloom", 100, 2, 3, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d t=%d n=%d", tc.scheme, tc.size, tc.t, tc.n), func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			spool := t.TempDir()
			c := newStoreFake(t, tc.n).client(t)
			ctx := context.Background()
			in, sum := stream(tc.size, 1)
			var progress int
			res, err := c.PutReader(ctx, in, PutOptions{Threshold: tc.t, Scheme: tc.scheme, DataID: "item-1", TempDir: spool,
				Progress: func(done, total int) { progress = total }})
			if err != nil {
				t.Fatal(err)
			}
			emptyDir(t, spool)
			want := sum.Sum(nil)
			for i, rs := range res.Receipts {
				if len(rs) != tc.segs {
					t.Errorf("share %d: %d receipts, want %d", i, len(rs), tc.segs)
				}
			}
			if res.Length != tc.size || res.Shares != tc.n || progress != tc.n*tc.segs {
				t.Fatalf("result: length %d, %d shares, progress total %d", res.Length, res.Shares, progress)
			}

			out := &hashWriter{h: sha256.New()}
			rep, err := c.GetDataTo(ctx, out, "item-1", "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.h.Sum(nil), want) || out.n != tc.size || rep.Length != tc.size || len(rep.Used) < tc.t {
				t.Fatalf("recovered %d bytes (report: %d, groups %v), want %d, hashes equal: %v", out.n, rep.Length, rep.Used, tc.size, bytes.Equal(out.h.Sum(nil), want))
			}
			if rep.Item.Segments != tc.segs || rep.DigestChecked != (tc.scheme != "asmuth-bloom") {
				t.Fatalf("report %+v", rep)
			}
			emptyDir(t, tmp)

			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := c.GetDataTo(ctx, f, "item-1", ""); err != nil {
				t.Fatal(err)
			}
			f.Seek(0, io.SeekStart)
			h := sha256.New()
			if n, _ := io.Copy(h, f); n != tc.size || !bytes.Equal(h.Sum(nil), want) {
				t.Fatalf("file holds %d bytes, want %d; hashes equal: %v", n, tc.size, bytes.Equal(h.Sum(nil), want))
			}
			emptyDir(t, tmp)
		})
	}
}

// heapGrowth runs f and returns by how much HeapInuse, sampled every
// millisecond while f runs, rose at most above its value before f, and
// how much f allocated in all. It lowers the GC target meanwhile, so that
// the heap follows live memory more closely.
func heapGrowth(f func()) (peak, total uint64) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var ms runtime.MemStats
		top := before.HeapInuse
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-stop:
				done <- top
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	top := <-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return top - before.HeapInuse, after.TotalAlloc - before.TotalAlloc
}

// TestStreamMemoryBounded: putting and getting a 64 MiB item through
// PutReader and GetDataTo, from a reader that generates it and to a
// writer that hashes it, keeps the heap far below the item's size:
// memory grows with the segments, not with the data.
func TestStreamMemoryBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("moves 64 MiB through the client; make test runs it without -race")
	}
	const size = 64 << 20
	t.Setenv("TMPDIR", t.TempDir())
	c := newStoreFake(t, 3).client(t)
	ctx := context.Background()
	in, sum := stream(size, 2)
	var err error
	putPeak, putTotal := heapGrowth(func() { _, err = c.PutReader(ctx, in, PutOptions{Threshold: 2, DataID: "big"}) })
	if err != nil {
		t.Fatal(err)
	}
	out := &hashWriter{h: sha256.New()}
	getPeak, getTotal := heapGrowth(func() { _, err = c.GetDataTo(ctx, out, "big", "") })
	if err != nil {
		t.Fatal(err)
	}
	if out.n != size || !bytes.Equal(out.h.Sum(nil), sum.Sum(nil)) {
		t.Fatalf("recovered %d bytes, want %d; hashes equal: %v", out.n, size, bytes.Equal(out.h.Sum(nil), sum.Sum(nil)))
	}
	t.Logf("put: heap peak +%.1f MiB (%.3f of the data), %.1f MiB allocated in all (%.2f)", float64(putPeak)/(1<<20), float64(putPeak)/size, float64(putTotal)/(1<<20), float64(putTotal)/size)
	t.Logf("get: heap peak +%.1f MiB (%.3f of the data), %.1f MiB allocated in all (%.2f)", float64(getPeak)/(1<<20), float64(getPeak)/size, float64(getTotal)/(1<<20), float64(getTotal)/size)
	// In memory, the shares alone (n/t = 1.5 times the data) would be more
	// than the data.
	const bound = 0.5
	if float64(putPeak)/size > bound || float64(getPeak)/size > bound {
		t.Fatalf("heap grew by %.3f (put) and %.3f (get) of the data, want at most %.2f", float64(putPeak)/size, float64(getPeak)/size, bound)
	}
}

// TestDecodeDownload: the incremental decoder takes the fields in any
// order, skips what it does not use, and refuses malformed answers and
// values beyond its bound.
func TestDecodeDownload(t *testing.T) {
	huge := `"` + strings.Repeat("A", maxDownloadValue) + `"`
	tests := []struct {
		name string
		body string
		// segs and head: what the callbacks get; ok: no error.
		segs int
		head bool
		ok   bool
	}{
		{"in the node's order", `{"item":{"data_id":"x"},"segments":[{"id":"a"},{"id":"b"}],"head":{"group":1}}`, 2, true, true},
		{"head first", `{"head":{"group":1},"segments":[{"id":"a","tx":{"payload":"AAAA"}}]}`, 1, true, true},
		{"null segments", `{"segments":null,"head":{}}`, 0, true, true},
		{"unknown fields", `{"extra":[1,2,{"a":"b"}],"segments":[],"more":"x"}`, 0, false, true},
		{"not an object", `[]`, 0, false, false},
		{"segments not an array", `{"segments":{}}`, 0, false, false},
		{"truncated", `{"segments":[{"id":"a"}`, 1, false, false},
		{"a value beyond the bound", `{"segments":[{"id":` + huge + `}]}`, 0, false, false},
		{"a skipped value beyond the bound", `{"item":` + huge + `}`, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs, head := 0, false
			err := decodeDownload(strings.NewReader(tc.body), "/p", func(Head) error { head = true; return nil },
				func(TxResponse) error { segs++; return nil })
			if (err == nil) != tc.ok || segs != tc.segs || head != tc.head {
				t.Fatalf("err %v, %d segments, head %v", err, segs, head)
			}
		})
	}
	stop := errors.New("stop")
	if err := decodeDownload(strings.NewReader(`{"segments":[{},{}]}`), "/p", nil, func(TxResponse) error { return stop }); err != stop {
		t.Fatalf("a callback's error is not returned as it is: %v", err)
	}
}
