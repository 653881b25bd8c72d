package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"qledger/api/client"
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
