package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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
			payload := make([]byte, 100)
			g := 0
			// Connect and shake hands before the clock starts.
			const parallelism = 16
			clients := make(chan *client.Client, parallelism*runtime.GOMAXPROCS(0))
			for range cap(clients) {
				cl := creds.connect(b, base, c.creds != nil, c.h2)
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
// in process". Plain HTTP/1.1 and mutual TLS over HTTP/1.1 (the protocol
// a node's API listener speaks), each with the server in this process and
// in another process (this test binary started again to serve, as a
// client of a node meets it).
func BenchmarkSubmitRoundTrip(b *testing.B) {
	creds := benchCreds(b)
	for _, c := range []struct {
		name  string
		tls   bool
		apart bool
	}{{"http", false, false}, {"https", true, false}, {"http-other-process", false, true}, {"https-other-process", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			var base string
			switch {
			case c.apart:
				base = serveInstantApart(b, creds.dir, c.tls)
			case c.tls:
				base = serveInstant(b, creds.node)
			default:
				base = serveInstant(b, nil)
			}
			cl := creds.connect(b, base, c.tls, false)
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

// serveApartEnv, set in this test binary's environment, makes it serve
// an API over instantLedger instead of running tests (TestMain): its
// value is a directory holding the node's credentials (node.pem) and
// the CA, or "plain" for plain HTTP. It prints the base URL and serves
// until its standard input closes.
const serveApartEnv = "QLEDGER_API_BENCH_SERVE"

// serveApart is the other process of serveInstantApart.
func serveApart(spec string) int {
	var creds *pki.Credentials
	if spec != "plain" {
		var err error
		if creds, err = pki.LoadCredentials(filepath.Join(spec, "ca.pem"), filepath.Join(spec, "node.pem"), filepath.Join(spec, "node-key.pem")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	base, stop, err := startInstant(creds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	fmt.Println(base)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// serveInstantApart starts this test binary again as an API server over
// instantLedger (serveApart) and returns its base URL.
func serveInstantApart(b *testing.B, dir string, withTLS bool) string {
	spec := "plain"
	if withTLS {
		spec = dir
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveApartEnv+"="+spec)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the serving process printed no address: %v", err)
	}
	return strings.TrimSpace(line)
}

type benchCredentials struct {
	node, client *pki.Credentials
	dir          string // the CA (ca.pem) and the node's credentials (node.pem, node-key.pem)
}

// connect is an API client of base on a connection of its own, with the
// submitter's credentials if withTLS, offering HTTP/2 if h2.
func (c benchCredentials) connect(b *testing.B, base string, withTLS, h2 bool) *client.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, ForceAttemptHTTP2: h2}
	if withTLS {
		tr.TLSClientConfig = c.client.ClientConfig(nil)
	}
	cl, err := client.New(base, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

// benchCreds issues a node's and a submitter's credentials from a new
// CA, and saves the CA and the node's in a directory of their own.
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
	dir := b.TempDir()
	if err := ca.Save(dir); err != nil {
		b.Fatal(err)
	}
	if err := nodeCert.Save(dir, "node"); err != nil {
		b.Fatal(err)
	}
	return benchCredentials{node: node, client: cli, dir: dir}
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
	base, stop, err := startInstant(creds)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return base
}

// startInstant serves an API over instantLedger on loopback, HTTPS with
// creds if set, with no rate limit, until stop.
func startInstant(creds *pki.Credentials) (base string, stop func(), err error) {
	cfg := DefaultConfig()
	cfg.RatePerCaller, cfg.TLS = 0, creds
	srv, err := New(cfg, instantLedger{})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go srv.Serve(ln)
	stop = func() { _ = srv.Shutdown(context.Background()) }
	if creds != nil {
		return "https://" + ln.Addr().String(), stop, nil
	}
	return "http://" + ln.Addr().String(), stop, nil
}
