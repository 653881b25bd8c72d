package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"qledger/chain"
)

// fakeChain is one group's chain built in memory, served as the API
// serves it. Blocks are 1-based: blocks[0] is height 1.
type fakeChain struct {
	blocks []chain.Block
	leaves []chain.Hash
}

// buildChain makes n blocks of two transactions; fork changes the
// transactions' payloads from height fork on, so two chains built with
// the same seed share blocks 1..fork-1.
func buildChain(t *testing.T, n, fork int, seed string) *fakeChain {
	t.Helper()
	fc := &fakeChain{}
	var log chain.Frontier
	var prev *chain.Header
	for h := 1; h <= n; h++ {
		tag := "main"
		if fork > 0 && h >= fork {
			tag = seed
		}
		var txs [][]byte
		for i := 0; i < 2; i++ {
			tx := chain.Tx{Kind: chain.TxData, Payload: []byte(fmt.Sprintf("%s block %d tx %d", tag, h, i))}
			txs = append(txs, tx.Encode())
		}
		b, err := chain.NextBlock(prev, 0, int64(h)*1e9, txs, &log, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range txs {
			fc.leaves = append(fc.leaves, chain.LeafHash(tx))
		}
		fc.blocks = append(fc.blocks, b)
		prev = &fc.blocks[len(fc.blocks)-1].Header
	}
	return fc
}

// fakeServer serves the first `height` blocks of whichever chain is
// current.
type fakeServer struct {
	mu     sync.Mutex
	c      *fakeChain
	height int
	// lag, if set, serves the head this many blocks behind the blocks (the
	// chain grew between the head read and the block reads).
	lag int
}

func (s *fakeServer) set(c *fakeChain, height int) {
	s.mu.Lock()
	s.c, s.height = c, height
	s.mu.Unlock()
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, height, lag := s.c, s.height, s.lag
	s.mu.Unlock()
	mux := http.NewServeMux()
	write := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = jsonEncode(w, v)
	}
	block := func(h int) (Block, bool) {
		if h < 1 || h > height {
			return Block{}, false
		}
		b, err := BlockFromRaw(c.blocks[h-1].Encode())
		return b, err == nil
	}
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		write(ClusterStatus{Groups: []GroupStatus{{Group: 0}}})
	})
	mux.HandleFunc("GET /v1/groups/0/head", func(w http.ResponseWriter, r *http.Request) {
		write(HeadFromHeader(c.blocks[height-1-lag].Header))
	})
	mux.HandleFunc("GET /v1/groups/0/blocks/{h}", func(w http.ResponseWriter, r *http.Request) {
		h, _ := strconv.Atoi(r.PathValue("h"))
		b, ok := block(h)
		if !ok {
			w.WriteHeader(404)
			write(ErrorBody{Code: CodeNotFound, Error: "no block"})
			return
		}
		write(b)
	})
	mux.HandleFunc("GET /v1/groups/0/blocks", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("from"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var out BlockList
		for h := from; h < from+limit; h++ {
			if b, ok := block(h); ok {
				out.Blocks = append(out.Blocks, b)
			}
		}
		write(out)
	})
	mux.HandleFunc("GET /v1/groups/0/proof/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
		proof, err := chain.ConsistencyProofFromLeaves(from, c.leaves[:to])
		if err != nil {
			w.WriteHeader(400)
			write(ErrorBody{Code: CodeBadRequest, Error: err.Error()})
			return
		}
		out := ConsistencyResponse{From: from, To: to, RootFrom: chain.RootFromLeaves(c.leaves[:from]).String(), RootTo: chain.RootFromLeaves(c.leaves[:to]).String()}
		for _, h := range proof {
			out.Hashes = append(out.Hashes, h.String())
		}
		write(out)
	})
	mux.ServeHTTP(w, r)
}

func TestAuditWatch(t *testing.T) {
	main := buildChain(t, 12, 0, "")
	srv := &fakeServer{}
	srv.set(main, 5)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.json")
	st, err := LoadAuditState(path)
	if err != nil {
		t.Fatal(err)
	}
	audit := func() (*Finding, error) {
		_, err := c.AuditGroup(ctx, 0, st, AuditOptions{})
		var f *Finding
		if errors.As(err, &f) {
			return f, nil
		}
		return nil, err
	}
	expectOK := func(what string, height uint64) {
		t.Helper()
		f, err := audit()
		if err != nil || f != nil {
			t.Fatalf("%s: %v %v", what, f, err)
		}
		if l, _ := st.Latest(0); l.Height != height {
			t.Fatalf("%s: trusted head %d, want %d", what, l.Height, height)
		}
	}

	// First sight while the chain grows: the blocks read are newer than
	// the head; the head is what is verified and trusted.
	srv.mu.Lock()
	srv.lag = 3
	srv.mu.Unlock()
	srv.set(main, 8)
	expectOK("first sight (whole chain verified up to the head)", 5)
	srv.mu.Lock()
	srv.lag = 0
	srv.mu.Unlock()
	st = &AuditState{Groups: map[string][]TrustedHead{}}
	srv.set(main, 5)
	expectOK("first sight (whole chain verified)", 5)
	srv.set(main, 8)
	expectOK("the chain grows", 8)
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	st, _ = LoadAuditState(path)
	expectOK("same head after a reload of the state", 8)

	// A rewritten suffix: the same blocks 1..6, different from 7 on.
	rewritten := buildChain(t, 12, 7, "rewritten")
	srv.set(rewritten, 10)
	f, err := audit()
	if err != nil || f == nil || f.Kind != FindingRewritten {
		t.Fatalf("rewritten suffix: finding %v, error %v", f, err)
	}
	if f.TrustedHeight != 8 || f.ServerHeight != 10 || f.AgreesUpTo != 5 || f.FirstBad != 8 {
		t.Fatalf("rewritten suffix: heights %+v, want trusted 8, server 10, agrees up to 5, first bad 8", f)
	}
	if l, _ := st.Latest(0); l.Height != 8 {
		t.Fatalf("a rewritten head was trusted: %d", l.Height)
	}

	// A forked head: another block at the trusted height.
	srv.set(rewritten, 8)
	if f, err := audit(); err != nil || f == nil || f.Kind != FindingFork || f.TrustedHeight != 8 {
		t.Fatalf("forked head: %v %v", f, err)
	}

	// A rollback.
	srv.set(main, 4)
	if f, err := audit(); err != nil || f == nil || f.Kind != FindingRollback {
		t.Fatalf("rollback: %v %v", f, err)
	}

	// The honest chain again extends the trusted state.
	srv.set(main, 12)
	expectOK("honest again", 12)
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
