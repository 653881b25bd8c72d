package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

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

	// A tile past the log and an entry bundle are 404.
	for _, p := range []string{"0/x001/000", "entries/000", "0/1"} {
		if st, body := do(auditor, "GET", base+"/v1/groups/0/tile/"+p, ""); st != 404 || !strings.Contains(body, "not_found") {
			t.Errorf("tile %s: %d %s, want 404", p, st, body)
		}
	}
}
