package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
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
	run := benchRun{log: log, dur: cfg.Duration, warm: 500 * time.Millisecond}
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	fmt.Fprintf(out, "qledger bench tls: 1 group × 3 replicas, 100-byte payloads, %d clients (%d for invocations), %s per run\n", cfg.Clients, max(cfg.Clients/4, 1), cfg.Duration)
	tab := newTable(out, cfg.Markdown, "system", "payload", "clients", "ops/s", "p50 ms", "p99 ms", "vs TLS off ops/s", "p50 vs TLS off")
	type runs struct{ submit, api, invoke result }
	measure := func(name string, ca *pki.CA) (runs, error) {
		var out runs
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir + "/" + name, Groups: 1, Replicas: 3, Base: &base, CA: ca, API: unlimited})
		if err != nil {
			return out, err
		}
		defer lc.Close()
		ld, ok := lc.Leader(0)
		if !ok {
			return out, fmt.Errorf("bench: no leader")
		}
		var api *client.Client
		for i, n := range lc.Nodes {
			if n != ld {
				continue
			}
			if ca == nil {
				api, _ = client.New(lc.Addrs[i], nil)
				break
			}
			cert, err := ca.Issue(pki.Leaf{CommonName: "bench", Role: pki.RoleSubmitter, Client: true})
			if err != nil {
				return out, err
			}
			creds, err := pki.NewCredentials(ca.PEM, cert.TLS)
			if err != nil {
				return out, err
			}
			if api, err = client.NewTLS(lc.Addrs[i], creds.ClientConfig(nil)); err != nil {
				return out, err
			}
		}
		payload := make([]byte, 100)
		out.submit = run.drive(cfg.Clients, func(c, i int) error {
			_, err := ld.Submit(context.Background(), chain.Tx{Kind: chain.TxData, Payload: payload})
			return err
		})
		g := 0
		out.api = run.drive(cfg.Clients, func(c, i int) error {
			_, _, err := api.Submit(context.Background(), payload, client.SubmitOptions{Group: &g})
			return err
		})
		code, _ := tiny.Module("tinyinc")
		spec := function.DefaultSpec("increment", "1", code)
		dep, _ := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
		if _, err := ld.Submit(context.Background(), chain.Tx{Kind: chain.TxDeploy, Payload: dep}); err != nil {
			return out, err
		}
		for _, n := range lc.Nodes {
			if err := n.CheckDeployment(context.Background(), function.Deployment{Spec: spec, Code: code}); err != nil {
				return out, err
			}
		}
		session := make([]byte, 32)
		rand.Read(session)
		out.invoke = run.drive(max(cfg.Clients/4, 1), func(c, i int) error {
			var req cluster.InvokeRequest
			rand.Read(req.RequestID[:])
			key, err := election.DeriveKey(session, req.RequestID[:])
			if err != nil {
				return err
			}
			req.Function, req.Input, req.ElectionKey, req.KeyID = "increment", []byte(`{"value":100}`), key, "bench"
			_, err = ld.Invoke(context.Background(), req)
			return err
		})
		return out, nil
	}
	off, err := measure("plain", nil)
	if err != nil {
		return err
	}
	on, err := measure("tls", ca)
	if err != nil {
		return err
	}
	inv := max(cfg.Clients/4, 1)
	tab.row("submit on the leader, TLS off", 100, cfg.Clients, off.submit, off.submit)
	tab.row("submit on the leader, mutual TLS", 100, cfg.Clients, on.submit, off.submit)
	tab.row("HTTP API submit, plain HTTP", 100, cfg.Clients, off.api, off.api)
	tab.row("HTTPS API submit, client cert", 100, cfg.Clients, on.api, off.api)
	tab.row("verified invoke (tiny), TLS off", 13, inv, off.invoke, off.invoke)
	tab.row("verified invoke (tiny), mutual TLS", 13, inv, on.invoke, off.invoke)

	// Handshakes: a mutual-TLS server on loopback, new connections only.
	hs := func(curve tls.CurveID) (result, error) {
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
		scfg := srvCreds.ServerConfig(true, nil)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					tc := tls.Server(c, scfg)
					_ = tc.Handshake()
					tc.Close()
				}()
			}
		}()
		ccfg := cliCreds.ClientConfig(nil)
		ccfg.CurvePreferences = []tls.CurveID{curve}
		return run.drive(4, func(c, i int) error {
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
	x, err := hs(tls.X25519)
	if err != nil {
		return err
	}
	pq, err := hs(tls.X25519MLKEM768)
	if err != nil {
		return err
	}
	tab.row("TLS 1.3 handshake, X25519", 0, 4, x, x)
	tab.row("TLS 1.3 handshake, X25519MLKEM768", 0, 4, pq, x)
	tab.print()
	return nil
}
