package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/pki"
	"qledger/transparency"
)

// httpTiles is the tlog.TileReader an outside client writes: it GETs
// C2SP tile paths and nothing else.
type httpTiles struct {
	hc   *http.Client
	base string
	got  map[string]string // path -> Cache-Control
}

func (httpTiles) Height() int { return transparency.TileHeight }
func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := transparency.TilePath(t)
		resp, err := h.hc.Get(h.base + "/tile/" + p)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("tile %s: %d %s", p, resp.StatusCode, b)
		}
		h.got[p] = resp.Header.Get("Cache-Control")
		out[i] = b
	}
	return out, nil
}
func (httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// TestCheckpointAndTilesVerifyWithSumdb: over HTTPS as an auditor, the
// checkpoint key's endorsement verifies against the cluster CA, the
// checkpoint opens with golang.org/x/mod/sumdb/note under that key and
// matches the signed JSON head, and sumdb/tlog, reading only the served
// tiles, proves every entry and earlier sizes against it — through full
// and partial tiles at levels 0 and 1.
func TestCheckpointAndTilesVerifyWithSumdb(t *testing.T) {
	_, ca, base := tlsAPI(t)
	cs := callers(t, ca, cluster.NewNodeID().String())
	auditor, submitter := cs["auditor"], cs["submitter"]

	const n = 300 // a full level-0 tile and a partial one
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if st, body := do(submitter, "POST", base+"/v1/tx", fmt.Sprintf(`{"payload":"%s"}`, base64.StdEncoding.EncodeToString(fmt.Append(nil, "entry ", i)))); st != 200 {
					errs <- fmt.Sprintf("submit %d: %d %s", i, st, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	// The note key, vouched for by the node's certificate.
	st, body := do(auditor, "GET", base+"/v1/groups/0/checkpoint/key", "")
	if st != 200 {
		t.Fatalf("key: %d %s", st, body)
	}
	var key client.NoteKey
	if err := json.Unmarshal([]byte(body), &key); err != nil {
		t.Fatal(err)
	}
	id, err := pki.VerifySignature(key.CertChain, ca.Pool(), transparency.EndorsementStatement(key.VerifierKey), key.Endorsement)
	if err != nil || id.Role != pki.RoleNode || id.Name != key.Node {
		t.Fatalf("endorsement: %v, %+v", err, id)
	}
	if key.Origin != "qledger/test-cluster/group/0" {
		t.Fatalf("origin %q", key.Origin)
	}
	v, err := note.NewVerifier(key.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}

	// The checkpoint, opened by sumdb/note.
	st, body = do(auditor, "GET", base+"/v1/groups/0/checkpoint", "")
	if st != 200 {
		t.Fatalf("checkpoint: %d %s", st, body)
	}
	opened, err := note.Open([]byte(body), note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v\n%s", err, body)
	}
	cp, err := transparency.ParseCheckpoint(opened.Text)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != key.Origin || cp.Size < n || len(cp.Extensions) != 3 {
		t.Fatalf("checkpoint %+v", cp)
	}
	var height uint64
	if _, err := fmt.Sscanf(cp.Extensions[0], "height %d", &height); err != nil {
		t.Fatal(err)
	}
	st, body = do(auditor, "GET", fmt.Sprintf("%s/v1/groups/0/blocks/%d", base, height), "")
	var blk client.Block
	if st != 200 || json.Unmarshal([]byte(body), &blk) != nil || blk.LogSize != cp.Size || blk.LogRoot != cp.Root.String() || cp.Extensions[1] != "block "+blk.Hash {
		t.Fatalf("the checkpoint does not match block %d: %d %.300s", height, st, body)
	}

	// The entries, in log order, from the blocks.
	var entries [][]byte
	for from := uint64(1); from <= height; from += 100 {
		st, body = do(auditor, "GET", fmt.Sprintf("%s/v1/groups/0/blocks?from=%d&limit=100", base, from), "")
		var bl client.BlockList
		if st != 200 || json.Unmarshal([]byte(body), &bl) != nil {
			t.Fatalf("blocks: %d %.300s", st, body)
		}
		for _, b := range bl.Blocks {
			for _, tx := range b.Txs {
				entries = append(entries, tx.TxBytes)
			}
		}
	}
	if uint64(len(entries)) != cp.Size {
		t.Fatalf("%d entries in the blocks, checkpoint size %d", len(entries), cp.Size)
	}

	// sumdb/tlog over the served tiles.
	tiles := httpTiles{hc: auditor, base: base + "/v1/groups/0", got: map[string]string{}}
	size, th := int64(cp.Size), tlog.Hash(cp.Root)
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: th}, tiles)
	for i := range size {
		p, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			t.Fatalf("ProveRecord(%d): %v", i, err)
		}
		if err := tlog.CheckRecord(p, size, th, i, tlog.RecordHash(entries[i])); err != nil {
			t.Fatalf("CheckRecord(%d): %v", i, err)
		}
	}
	for _, old := range []int64{1, 2, 255, 256, 257, size - 1, size} {
		st, body := do(auditor, "GET", fmt.Sprintf("%s/v1/groups/0/proof/consistency?from=%d&to=%d", base, old, size), "")
		var cr client.ConsistencyResponse
		if st != 200 || json.Unmarshal([]byte(body), &cr) != nil {
			t.Fatalf("consistency: %d %s", st, body)
		}
		oldRoot, _ := chain.ParseHash(cr.RootFrom)
		p, err := tlog.ProveTree(size, old, hr)
		if err != nil {
			t.Fatalf("ProveTree(%d): %v", old, err)
		}
		if err := tlog.CheckTree(p, size, th, old, tlog.Hash(oldRoot)); err != nil {
			t.Fatalf("CheckTree(%d): %v", old, err)
		}
	}
	if cc := tiles.got["0/000"]; !strings.Contains(cc, "immutable") {
		t.Errorf("full tile 0/000: Cache-Control %q, want immutable", cc)
	}
	if len(tiles.got) < 3 {
		t.Errorf("tlog read only tiles %v; want full and partial tiles at levels 0 and 1", tiles.got)
	}

	// The entry bundles: every entry, hashed with tlog.RecordHash, is
	// the leaf hash tlog reads from the level-0 tiles and authenticates
	// against the checkpoint's root; and the entries are the blocks'.
	var bundled [][]byte
	for _, p := range []string{"entries/000", fmt.Sprintf("entries/001.p/%d", size-256)} {
		resp, err := auditor.Get(base + "/v1/groups/0/tile/" + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("bundle %s: %d %s", p, resp.StatusCode, b)
		}
		if cc, full := resp.Header.Get("Cache-Control"), p == "entries/000"; full != strings.Contains(cc, "immutable") || !strings.HasPrefix(cc, "public") {
			t.Errorf("bundle %s: Cache-Control %q", p, cc)
		}
		bundled = append(bundled, splitBundle(t, b)...)
	}
	if int64(len(bundled)) != size {
		t.Fatalf("%d entries in the bundles, checkpoint size %d", len(bundled), size)
	}
	for i, e := range bundled {
		leaf, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))})
		if err != nil {
			t.Fatalf("leaf %d from the tiles: %v", i, err)
		}
		if tlog.RecordHash(e) != leaf[0] || string(e) != string(entries[i]) {
			t.Fatalf("bundle entry %d does not hash to the log's leaf %d", i, i)
		}
	}

	// A tile or bundle past the log, and malformed paths, are 404.
	for _, p := range []string{"0/x001/000", "entries/001", fmt.Sprintf("entries/001.p/%d", size-255), "entries/1", "0/1"} {
		if st, body := do(auditor, "GET", base+"/v1/groups/0/tile/"+p, ""); st != 404 || !strings.Contains(body, "not_found") {
			t.Errorf("tile %s: %d %s, want 404", p, st, body)
		}
	}
}

// splitBundle decodes a C2SP entry bundle as an outside client would:
// a big-endian uint16 length before each entry.
func splitBundle(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatalf("bundle truncated after %d entries", len(out))
		}
		n := int(binary.BigEndian.Uint16(b))
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// TestEntryBundlesWholeOrNotAtAll: a bundle is served only when every
// entry in it fits the uint16 length prefix and is visible to the caller.
// A share segment restricted to readers makes the bundle 403 for others
// and privately cacheable for a reader; an entry over 65535 bytes makes
// it 413 for everyone; each error names the entry.
func TestEntryBundlesWholeOrNotAtAll(t *testing.T) {
	_, ca, base := tlsAPI(t)
	ctx := context.Background()
	alice := roleClient(t, ca, base, pki.RoleSubmitter, "alice", "")
	auditor := callers(t, ca, cluster.NewNodeID().String())["auditor"]
	reader := httpClientFor(t, ca, pki.RoleAuditor, "bob")

	submit := func(payload []byte) uint64 {
		t.Helper()
		rc, _, err := alice.Submit(ctx, payload, client.SubmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rc.Index
	}
	first := submit([]byte("public 0"))
	submit([]byte("public 1"))
	if first != 0 {
		t.Fatalf("first entry at %d", first)
	}
	if _, err := alice.PutData(ctx, []byte("for bob's eyes"), client.PutOptions{Threshold: 1, Readers: []string{"bob", "alice"}}); err != nil {
		t.Fatal(err)
	}
	afterShare := submit([]byte("public 2"))
	big := submit(bytes.Repeat([]byte{'x'}, transparency.MaxEntrySize+1))

	get := func(hc *http.Client, w uint64) (int, string, http.Header) {
		t.Helper()
		resp, err := hc.Get(fmt.Sprintf("%s/v1/groups/0/tile/entries/000.p/%d", base, w))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// Before the share: served to everyone, publicly cacheable.
	if st, body, hd := get(auditor, 2); st != 200 || len(splitBundle(t, []byte(body))) != 2 || hd.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("public bundle: %d %q %q", st, body, hd.Get("Cache-Control"))
	}
	// With the share: the auditor off its reader list is refused, naming
	// entry 2; the reader gets it, privately cacheable.
	if st, body, _ := get(auditor, afterShare+1); st != 403 || !strings.Contains(body, "forbidden") || !strings.Contains(body, "entry 2 ") {
		t.Fatalf("non-reader: %d %s", st, body)
	}
	st, body, hd := get(reader, afterShare+1)
	if st != 200 || hd.Get("Cache-Control") != "private, max-age=60" {
		t.Fatalf("reader: %d %.200s %q", st, body, hd.Get("Cache-Control"))
	}
	if got := splitBundle(t, []byte(body)); uint64(len(got)) != afterShare+1 || string(mustTx(t, got[afterShare]).Payload) != "public 2" {
		t.Fatalf("reader's bundle has %d entries", len(got))
	}
	// With the oversized entry: 413 for everyone.
	for name, hc := range map[string]*http.Client{"auditor": auditor, "reader": reader} {
		if st, body, _ := get(hc, big+1); st != 413 && st != 403 || st == 413 && !strings.Contains(body, fmt.Sprintf("entry %d is", big)) {
			t.Fatalf("%s, oversized entry: %d %s", name, st, body)
		}
	}
	if st, body, _ := get(reader, big+1); st != 413 || !strings.Contains(body, "too_large") {
		t.Fatalf("reader, oversized entry: %d %s", st, body)
	}
}

func mustTx(t *testing.T, b []byte) chain.Tx {
	t.Helper()
	tx, err := chain.DecodeTx(b)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// httpClientFor is an HTTP client presenting a certificate for role and name.
func httpClientFor(t *testing.T, ca *pki.CA, role pki.Role, name string) *http.Client {
	t.Helper()
	cert, err := ca.Issue(pki.Leaf{CommonName: name, Role: role, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: creds.ClientConfig(nil)}}
}

// olderLeader is a cluster whose group leader runs a release from before
// the nodes read: LogNodes fails as cluster.Node's does then.
type olderLeader struct{ *fakeCluster }

func (olderLeader) LogNodes(context.Context, int, uint8, uint64, int, cluster.Level) ([]chain.Hash, error) {
	return nil, fmt.Errorf("%w: it does not know \"nodes\" reads (cluster: bad request: query op \"nodes\")", cluster.ErrUnsupported)
}

// TestTileFromAnOlderNode: during a rolling upgrade a tile read served
// by a node that predates tiles is 503 unavailable saying so, not a 404
// that would tell a client the tile is past the log.
func TestTileFromAnOlderNode(t *testing.T) {
	srv, err := New(DefaultConfig(), olderLeader{newFakeCluster(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/groups/0/tile/0/000.p/1", nil))
	var e client.ErrorBody
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != "unavailable" || !strings.Contains(e.Error, "older release") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}
