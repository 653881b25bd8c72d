package api

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/pki"
)

// instantLedger answers every write at once: a benchmark of what the API
// adds to a write (HTTP, TLS, JSON, the handler chain) measures only that.
type instantLedger struct{ Cluster }

func (instantLedger) Groups() int { return 1 }

func (instantLedger) Submit(_ context.Context, t chain.Tx) (cluster.Receipt, error) {
	return cluster.Receipt{ID: chain.TxID(t.Encode()), Height: 1}, nil
}

// BenchmarkSubmitPath is POST /v1/tx end to end over loopback against a
// ledger that answers at once, so ns/op and allocs/op are the API's own
// cost per write (server and client together): plain HTTP/1.1, and
// mutual TLS over HTTP/1.1 and over HTTP/2, each with as many concurrent
// clients as GOMAXPROCS × 16, every client on its own connection. It
// reports the CPU time per write too (cpu-ns/op).
func BenchmarkSubmitPath(b *testing.B) {
	creds := benchCreds(b)
	for _, c := range []struct {
		name  string
		creds *pki.Credentials
		h2    bool
	}{
		{"http", nil, false},
		{"https-http1.1", creds.node, false},
		{"https-http2", creds.node, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := serveInstant(b, c.creds)
			connect := func() *client.Client {
				tr := &http.Transport{MaxIdleConnsPerHost: 1, ForceAttemptHTTP2: c.h2}
				if c.creds != nil {
					tr.TLSClientConfig = creds.client.ClientConfig(nil)
				}
				cl, err := client.New(base, &http.Client{Transport: tr, Timeout: 30 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				return cl
			}
			payload := make([]byte, 100)
			g := 0
			// Connect and shake hands before the clock starts.
			const parallelism = 16
			clients := make(chan *client.Client, parallelism*runtime.GOMAXPROCS(0))
			for range cap(clients) {
				cl := connect()
				if _, _, err := cl.Submit(context.Background(), payload, client.SubmitOptions{Group: &g}); err != nil {
					b.Fatal(err)
				}
				clients <- cl
			}
			b.SetParallelism(parallelism)
			b.ReportAllocs()
			cpu := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cl := <-clients
				for pb.Next() {
					if _, _, err := cl.Submit(context.Background(), payload, client.SubmitOptions{Group: &g}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// CPU time per write (this process is server and client): on a
			// shared machine it varies far less than ns/op.
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkSubmitRoundTrip is one client writing one request at a time
// (POST /v1/tx over loopback, to a ledger that answers at once): ns/op is
// what the API adds to a lone client's write latency (the client's
// encoding and transport, TLS records both ways, the server's handler
// chain and JSON), the floor under "one-client p50 through the API minus
// in process". Plain HTTP/1.1 and mutual TLS over HTTP/1.1, the protocol
// a node's API listener speaks.
func BenchmarkSubmitRoundTrip(b *testing.B) {
	creds := benchCreds(b)
	for _, c := range []struct {
		name  string
		creds *pki.Credentials
	}{{"http", nil}, {"https", creds.node}} {
		b.Run(c.name, func(b *testing.B) {
			base := serveInstant(b, c.creds)
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			if c.creds != nil {
				tr.TLSClientConfig = creds.client.ClientConfig(nil)
			}
			cl, err := client.New(base, &http.Client{Transport: tr, Timeout: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 100)
			g := 0
			if _, _, err := cl.Submit(context.Background(), payload, client.SubmitOptions{Group: &g}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, _, err := cl.Submit(context.Background(), payload, client.SubmitOptions{Group: &g}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

type benchCredentials struct{ node, client *pki.Credentials }

// benchCreds issues a node's and a submitter's credentials from a new CA.
func benchCreds(b *testing.B) benchCredentials {
	ca, err := pki.NewCA("bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	nodeCert, err := ca.Issue(pki.Leaf{CommonName: "node", Role: pki.RoleNode, NodeID: cluster.NewNodeID().String()})
	if err != nil {
		b.Fatal(err)
	}
	node, err := pki.NewCredentials(ca.PEM, nodeCert.TLS)
	if err != nil {
		b.Fatal(err)
	}
	cliCert, err := ca.Issue(pki.Leaf{CommonName: "bench", Role: pki.RoleSubmitter, Client: true})
	if err != nil {
		b.Fatal(err)
	}
	cli, err := pki.NewCredentials(ca.PEM, cliCert.TLS)
	if err != nil {
		b.Fatal(err)
	}
	return benchCredentials{node: node, client: cli}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveInstant serves an API over instantLedger on loopback, HTTPS with
// creds if set, with no rate limit, and returns its base URL.
func serveInstant(b *testing.B, creds *pki.Credentials) string {
	cfg := DefaultConfig()
	cfg.RatePerCaller, cfg.TLS = 0, creds
	srv, err := New(cfg, instantLedger{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	if creds != nil {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}
