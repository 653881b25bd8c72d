package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/chain"
)

// TestProofReadsWaitOutRateLimits: a node that answers 429 to a proof
// read is asked again, and its answer is the read's, not an error the
// durability check would count as a bad proof. Any other error is
// returned at once.
func TestProofReadsWaitOutRateLimits(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch n := calls.Add(1); {
		case r.URL.Path == "/v1/tx/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such transaction","code":"not_found"}`))
		case n <= 3:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":"over its rate limit","code":"rate_limited"}`))
		default:
			_, _ = w.Write([]byte(`{"id":"t1","index":7,"height":3}`))
		}
	}))
	defer srv.Close()
	api, err := client.New(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := txBackingOff(ctx, api, "t1")
	if err != nil || r.Index != 7 || calls.Load() != 4 {
		t.Fatalf("got %+v, %v after %d calls; want index 7 after 4 calls", r, err, calls.Load())
	}
	calls.Store(0)
	if _, err := txBackingOff(ctx, api, "gone"); err == nil || calls.Load() != 1 {
		t.Fatalf("a 404 gave %v after %d calls; want the error at once", err, calls.Load())
	}
	calls.Store(-1000)
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if _, err := txBackingOff(short, api, "t1"); err == nil {
		t.Fatal("a node that never stops refusing gave no error once the context ended")
	}
}

// TestProofForALongerLogHeldToHead: once the final head is taken, a late
// commit may grow the log, and a node then serves every proof for the
// longer log. The check holds such a proof to the final head through a
// consistency proof, and rejects it when the longer log does not extend
// the head's (a fork) or the node cannot show that it does.
func TestProofForALongerLogHeldToHead(t *testing.T) {
	var leaves, forked []chain.Hash
	var bodies [][]byte
	for i := 0; i < 6; i++ {
		b := []byte(fmt.Sprintf("tx %d", i))
		bodies = append(bodies, b)
		leaves = append(leaves, chain.LeafHash(b))
		forked = append(forked, chain.LeafHash(append([]byte("other "), b...)))
	}
	forked[2] = leaves[2]
	head := client.Head{Height: 5, LogSize: 5, LogRoot: chain.RootFromLeaves(leaves[:5]).String()}
	served := func(ls []chain.Hash) (client.TxResponse, client.ConsistencyResponse) {
		path, err := chain.InclusionProofFromLeaves(2, ls)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := chain.ConsistencyProofFromLeaves(5, ls)
		if err != nil {
			t.Fatal(err)
		}
		root := chain.RootFromLeaves(ls).String()
		tx := client.TxResponse{ID: chain.TxID(bodies[2]).String(), Index: 2, TxBytes: bodies[2], LeafHash: leaves[2].String(),
			Proof: client.Proof{LeafIndex: 2, TreeSize: uint64(len(ls)), Root: root, Hashes: hexes(path)}}
		return tx, client.ConsistencyResponse{From: 5, To: uint64(len(ls)), RootFrom: chain.RootFromLeaves(ls[:5]).String(), RootTo: root, Hashes: hexes(cons)}
	}
	for _, tc := range []struct {
		name    string
		log     []chain.Hash
		noProof bool
		want    string // "" for success
	}{
		{"the head's own log", leaves[:5], false, ""},
		{"a longer log extending the head's", leaves, false, ""},
		{"a longer log that forks from the head's", forked, false, "does not extend"},
		{"a longer log the node cannot prove", leaves, true, "does not extend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, cons := served(tc.log)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				var v any = tx
				if strings.HasSuffix(r.URL.Path, "/proof/consistency") {
					if tc.noProof {
						w.WriteHeader(http.StatusBadRequest)
						_, _ = w.Write([]byte(`{"error":"no","code":"bad_request"}`))
						return
					}
					v = cons
				}
				_ = json.NewEncoder(w).Encode(v)
			}))
			defer srv.Close()
			api, err := client.New(srv.URL, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			check := (&Cluster{}).ProofChecker(ctx, api, head)
			for i := 0; i < 2; i++ { // the second answer comes from the cache
				err = check(Entry{Index: 2, TxID: tx.ID})
				if tc.want == "" && err != nil {
					t.Fatalf("check %d: %v", i, err)
				}
				if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("check %d: got %v, want an error saying %q", i, err, tc.want)
				}
			}
		})
	}
}

func hexes(hs []chain.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
