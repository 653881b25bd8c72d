package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"qledger/chain"
	"qledger/cluster"
)

// TestRateLimitPerCaller: a caller over its bucket gets 429 with
// Retry-After; another caller is not affected.
func TestRateLimitPerCaller(t *testing.T) {
	_, ca, base := tlsAPIWith(t, func(c *Config) { c.RatePerCaller, c.RateBurst = 1, 3 })
	cs := callers(t, ca, cluster.NewNodeID().String())
	limited := 0
	for i := 0; i < 6; i++ {
		st, body := do(cs["auditor"], "GET", base+"/v1/groups/0/head", "")
		switch st {
		case 200:
		case 429:
			limited++
			if !strings.Contains(body, `"rate_limited"`) {
				t.Fatalf("429 body: %s", body)
			}
		default:
			t.Fatalf("status %d: %s", st, body)
		}
	}
	if limited < 2 {
		t.Fatalf("%d of 6 rapid requests limited with a burst of 3, want at least 2", limited)
	}
	req, _ := http.NewRequest("GET", base+"/v1/groups/0/head", nil)
	resp, err := cs["auditor"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st, body := do(cs["admin"], "GET", base+"/v1/groups/0/head", ""); st != 200 {
		t.Fatalf("another caller was limited: %d %s", st, body)
	}
	if st, _ := do(cs["none"], "GET", base+"/healthz", ""); st != 200 {
		t.Fatalf("health probe limited: %d", st)
	}
}

// blockingCluster holds Submit until released, to make requests overlap.
type blockingCluster struct {
	Cluster
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCluster) Groups() int { return 1 }

func (b *blockingCluster) Submit(ctx context.Context, t chain.Tx) (cluster.Receipt, error) {
	b.entered <- struct{}{}
	<-b.release
	return cluster.Receipt{Group: 0, Height: 1}, nil
}

// TestInFlightDuplicate: the same idempotency key while the first request
// is still running is 409; after it finishes the key is free again.
func TestInFlightDuplicate(t *testing.T) {
	bc := &blockingCluster{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := New(DefaultConfig(), bc)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	post := func() int {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/tx", strings.NewReader(`{"payload":"YQ=="}`))
		req.Header.Set("Idempotency-Key", "pay-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	var first int
	wg.Add(1)
	go func() { defer wg.Done(); first = post() }()
	select {
	case <-bc.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first request never reached the cluster")
	}
	if st := post(); st != http.StatusConflict {
		t.Fatalf("in-flight duplicate: %d, want 409", st)
	}
	close(bc.release)
	wg.Wait()
	if first != 200 {
		t.Fatalf("first request: %d", first)
	}
	go func() { <-bc.entered }()
	if st := post(); st != 200 {
		t.Fatalf("after the first finished: %d, want 200", st)
	}
}

func TestInvocationCap(t *testing.T) {
	l := newLimits(Config{MaxInvocationsPerCaller: 2})
	d1, ok1 := l.startInvoke("submitter:a")
	_, ok2 := l.startInvoke("submitter:a")
	if _, ok3 := l.startInvoke("submitter:a"); !ok1 || !ok2 || ok3 {
		t.Fatalf("cap 2: %v %v %v", ok1, ok2, ok3)
	}
	if _, ok := l.startInvoke("submitter:b"); !ok {
		t.Fatal("another caller was capped")
	}
	d1()
	if _, ok := l.startInvoke("submitter:a"); !ok {
		t.Fatal("a finished invocation did not free a slot")
	}
	if e := newLimits(DefaultConfig()); e.maxInvoke != 32 {
		t.Fatal(e.maxInvoke)
	}
}
