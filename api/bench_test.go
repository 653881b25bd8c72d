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
	ca, err := pki.NewCA("bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	nodeCert, err := ca.Issue(pki.Leaf{CommonName: "node", Role: pki.RoleNode, NodeID: cluster.NewNodeID().String()})
	if err != nil {
		b.Fatal(err)
	}
	nodeCreds, _ := pki.NewCredentials(ca.PEM, nodeCert.TLS)
	cliCert, err := ca.Issue(pki.Leaf{CommonName: "bench", Role: pki.RoleSubmitter, Client: true})
	if err != nil {
		b.Fatal(err)
	}
	cliCreds, _ := pki.NewCredentials(ca.PEM, cliCert.TLS)
	for _, c := range []struct {
		name  string
		creds *pki.Credentials
		h2    bool
	}{
		{"http", nil, false},
		{"https-http1.1", nodeCreds, false},
		{"https-http2", nodeCreds, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := serveInstant(b, c.creds)
			connect := func() *client.Client {
				tr := &http.Transport{MaxIdleConnsPerHost: 1, ForceAttemptHTTP2: c.h2}
				if c.creds != nil {
					tr.TLSClientConfig = cliCreds.ClientConfig(nil)
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
