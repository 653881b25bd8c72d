package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/examples/functions/tiny"
	"qledger/function"
	"qledger/pki"
	"qledger/server"
)

// TLSConfig is one run of TLS.
type TLSConfig struct {
	Duration time.Duration // measured time per run
	Clients  int           // concurrent clients for the submit runs (invocations use a quarter)
	Markdown bool          // print a Markdown table
}

// TLS measures what mutual TLS costs: the core submit path (in
// process on the leader, so raft replication runs over TLS; and through
// the HTTPS API with a client certificate) and verified invocations, each
// with TLS on beside the same run with TLS off; and full TLS 1.3
// handshakes per second with X25519MLKEM768 beside X25519.
func TLS(cfg TLSConfig, out, log io.Writer) error {
	dir, err := os.MkdirTemp("", "qledger-bench-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := pki.NewCA("bench", time.Hour)
	if err != nil {
		return err
	}
	b := tlsBench{cfg: cfg, dir: dir, run: benchRun{log: log, dur: cfg.Duration, warm: 500 * time.Millisecond}, base: cluster.DefaultConfig()}
	b.base.LoopbackTiming()
	inv := max(cfg.Clients/4, 1)
	fmt.Fprintf(out, "qledger bench tls: 1 group × 3 replicas, 100-byte payloads, %d clients (%d for invocations), %s per run\n", cfg.Clients, inv, cfg.Duration)
	tab := newTable(out, cfg.Markdown, "system", "payload", "clients", "ops/s", "p50 ms", "p99 ms", "vs TLS off ops/s", "p50 vs TLS off")
	off, err := b.measure("plain", nil)
	if err != nil {
		return err
	}
	on, err := b.measure("tls", ca)
	if err != nil {
		return err
	}
	tab.row("submit on the leader, TLS off", 100, cfg.Clients, off.submit, off.submit)
	tab.row("submit on the leader, mutual TLS", 100, cfg.Clients, on.submit, off.submit)
	tab.row("HTTP API submit, plain HTTP", 100, cfg.Clients, off.api, off.api)
	tab.row("HTTPS API submit, client cert", 100, cfg.Clients, on.api, off.api)
	tab.row("verified invoke (tiny), TLS off", 13, inv, off.invoke, off.invoke)
	tab.row("verified invoke (tiny), mutual TLS", 13, inv, on.invoke, off.invoke)
	x, err := b.handshakes(ca, tls.X25519)
	if err != nil {
		return err
	}
	pq, err := b.handshakes(ca, tls.X25519MLKEM768)
	if err != nil {
		return err
	}
	tab.row("TLS 1.3 handshake, X25519", 0, 4, x, x)
	tab.row("TLS 1.3 handshake, X25519MLKEM768", 0, 4, pq, x)
	tab.print()
	return nil
}

type tlsBench struct {
	cfg  TLSConfig
	dir  string
	run  benchRun
	base cluster.Config
}

// tlsRuns are one cluster's measurements.
type tlsRuns struct{ submit, api, invoke result }

// measure runs the submit, API and invoke measurements on a 1 × 3
// cluster, with mutual TLS if ca is set.
func (b tlsBench) measure(name string, ca *pki.CA) (tlsRuns, error) {
	var out tlsRuns
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: b.dir + "/" + name, Groups: 1, Replicas: 3, Base: &b.base, CA: ca, API: unlimited})
	if err != nil {
		return out, err
	}
	defer lc.Close()
	ld, ok := lc.Leader(0)
	if !ok {
		return out, fmt.Errorf("bench: no leader")
	}
	api, err := leaderAPI(lc, ld, ca)
	if err != nil {
		return out, err
	}
	payload := make([]byte, 100)
	out.submit = b.run.drive(b.cfg.Clients, func(c, i int) error {
		_, err := ld.Submit(context.Background(), chain.Tx{Kind: chain.TxData, Payload: payload})
		return err
	})
	g := 0
	out.api = b.run.drive(b.cfg.Clients, func(c, i int) error {
		_, _, err := api.Submit(context.Background(), payload, client.SubmitOptions{Group: &g})
		return err
	})
	code, _ := tiny.Module("tinyinc")
	if err := deploy(lc, ld, 1, function.Deployment{Spec: function.DefaultSpec("increment", "1", code), Code: code}); err != nil {
		return out, err
	}
	out.invoke = b.run.drive(max(b.cfg.Clients/4, 1), invokeOp(ld, 1))
	return out, nil
}

// leaderAPI is a client of the leader's API: plain, or with ca a
// submitter certificate over HTTPS.
func leaderAPI(lc *server.Local, ld *cluster.Node, ca *pki.CA) (*client.Client, error) {
	for i, n := range lc.Nodes {
		if n != ld {
			continue
		}
		if ca == nil {
			return client.New(lc.Addrs[i], nil)
		}
		cert, err := ca.Issue(pki.Leaf{CommonName: "bench", Role: pki.RoleSubmitter, Client: true})
		if err != nil {
			return nil, err
		}
		creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
		if err != nil {
			return nil, err
		}
		return client.NewTLS(lc.Addrs[i], creds.ClientConfig(nil))
	}
	return nil, fmt.Errorf("bench: the leader is not in the cluster")
}

// handshakes measures full mutual-TLS 1.3 handshakes per second with
// curve against a server on loopback, new connections only.
func (b tlsBench) handshakes(ca *pki.CA, curve tls.CurveID) (result, error) {
	srvCert, err := ca.Issue(pki.Leaf{CommonName: "srv", Role: pki.RoleNode, NodeID: cluster.NewNodeID().String()})
	if err != nil {
		return result{}, err
	}
	cliCert, err := ca.Issue(pki.Leaf{CommonName: "cli", Role: pki.RoleSubmitter, Client: true})
	if err != nil {
		return result{}, err
	}
	srvCreds, _ := pki.NewCredentials(ca.PEM, srvCert.TLS)
	cliCreds, _ := pki.NewCredentials(ca.PEM, cliCert.TLS)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	defer ln.Close()
	go acceptHandshakes(ln, srvCreds.ServerConfig(true, nil))
	ccfg := cliCreds.ClientConfig(nil)
	ccfg.CurvePreferences = []tls.CurveID{curve}
	return b.run.drive(4, func(c, i int) error {
		conn, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
		if err != nil {
			return err
		}
		if conn.ConnectionState().CurveID != curve {
			conn.Close()
			return fmt.Errorf("negotiated %v", conn.ConnectionState().CurveID)
		}
		return conn.Close()
	}), nil
}

// acceptHandshakes completes a TLS handshake on every connection to ln
// and closes it, until ln is closed.
func acceptHandshakes(ln net.Listener, cfg *tls.Config) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			tc := tls.Server(c, cfg)
			_ = tc.Handshake()
			tc.Close()
		}()
	}
}
