package kme_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"qledger/qkd"
	"qledger/qkd/kme"
)

// A gateway mounts the KME at /api/v1/keys/ and fills a pool from the BB84
// engine; the master SAE takes a key, the slave SAE fetches the same key by
// its ID. In production the caller's SAE ID comes from its TLS client
// certificate; this example names the caller with a header instead.
func Example() {
	cfg := kme.DefaultConfig()
	cfg.CallerSAE = func(r *http.Request) (string, error) { return r.Header.Get("X-Example-SAE"), nil }
	srv, _ := kme.NewServer(cfg)
	pool, _ := srv.AddPair("client-1", "gateway-1")

	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Seed = []byte("example")
	link, _ := qkd.NewLink(qc)
	_ = pool.Fill(context.Background(), link, 10, 3)

	mux := http.NewServeMux()
	mux.Handle(kme.PathPrefix, srv)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	as := func(sae string) *http.Client {
		return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			r.Header.Set("X-Example-SAE", sae)
			return http.DefaultTransport.RoundTrip(r)
		})}
	}
	master, _ := kme.NewClient(ts.URL, as("client-1"))
	slave, _ := kme.NewClient(ts.URL, as("gateway-1"))
	ctx := context.Background()
	keys, _ := master.EncKeys(ctx, "gateway-1", kme.KeyRequest{})
	same, _ := slave.DecKeys(ctx, "client-1", []string{keys[0].KeyID})
	_, again := slave.DecKeys(ctx, "client-1", []string{keys[0].KeyID})
	fmt.Println(len(keys[0].Key), string(same[0].Key) == string(keys[0].Key), again != nil)
	// Output: 32 true true
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
