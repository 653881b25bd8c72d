// Package demo is qledger's main scenario end to end on a throwaway
// embedded cluster: role checks, writes to every group through every node,
// an idempotent retry, a write through the quantum-keyed channel, verified
// function invocations, an inclusion proof checked client-side, a leader
// killed and replaced, a consistency proof, every chain verified over the
// API and then offline from the data directories. It prints a report as
// it goes and fails at the first step whose check does not hold.
//
// It is its own package, above server and beside cmd, because it is a
// client of the whole system rather than part of any runtime package:
// `qledger demo` parses its flags and runs a Scenario, and tests can run
// one with a writer of their own.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api/client"
	"qledger/chain"
	"qledger/fsm"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/server"
)

// ErrFailed is a check of the scenario that did not hold.
var ErrFailed = errors.New("demo: check failed")

// Scenario is one run of the demo.
type Scenario struct {
	// Groups × Replicas nodes; Replicas must be at least 3 (a leader is
	// killed).
	Groups, Replicas int
	// Txs is how many transactions to submit.
	Txs int
	// Keep keeps the data directory.
	Keep bool
	// Out receives the report; nil: os.Stdout.
	Out io.Writer
	// Logger for the cluster; nil: none.
	Logger hclog.Logger
}

// Validate checks the scenario's sizes.
func (s Scenario) Validate() error {
	if s.Groups < 1 || s.Replicas < 3 || s.Txs < 1 {
		return errors.New("demo: need groups >= 1, replicas >= 3 (a leader is killed), txs >= 1")
	}
	return nil
}

// run is the state of one scenario run, passed from step to step.
type run struct {
	Scenario
	ctx      context.Context
	dir      string
	tlsDir   string
	ca       *pki.CA
	keys     *kme.Service
	lc       *server.Local
	closed   bool
	clients  []*client.Client // a submitter per node
	admin    *client.Client
	auditor  *client.Client
	sess     *client.Session // opened on node 0 through the quantum-keyed channel
	receipts []client.Receipt
	after    []client.Receipt // written after the leader was killed
	reader   *client.Client   // a submitter on a node alive after the kill
	invoked  int
}

// Run runs the scenario within ctx and returns the first failure.
func (s Scenario) Run(ctx context.Context) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Out == nil {
		s.Out = os.Stdout
	}
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	dir, err := os.MkdirTemp("", "qledger-demo-")
	if err != nil {
		return err
	}
	if !s.Keep {
		defer os.RemoveAll(dir)
	}
	r := &run{Scenario: s, ctx: ctx, dir: dir, tlsDir: filepath.Join(dir, "tls")}
	defer r.close()
	start := time.Now()
	for _, step := range []func() error{
		r.start, r.roles, r.submitAll, r.idempotentRetry, r.keyedChannel, r.functions, r.afterFailover, r.verifyAll, r.verifyOffline,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	r.step("report")
	r.printf("  groups %d × replicas %d, %d transactions committed and verified (one through the quantum-keyed channel, %d verified executions), leader failover survived, %s total\n",
		s.Groups, s.Replicas, r.total(), r.invoked, time.Since(start).Round(time.Millisecond))
	r.printf("  Merkle hashing RFC 6962 (empty root %s…)\n", chain.EmptyRoot().String()[:16])
	r.printf("demo: OK\n")
	return nil
}

func (r *run) step(format string, args ...any)   { fmt.Fprintf(r.Out, "\n== "+format+"\n", args...) }
func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.Out, format, args...) }

func failf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFailed, fmt.Sprintf(format, args...))
}

func (r *run) close() {
	if r.lc != nil && !r.closed {
		r.lc.Close()
	}
	if r.keys != nil {
		r.keys.Close()
	}
}

// start starts the key manager and the cluster with mutual TLS, and makes
// a submitter client per node, an admin and an auditor.
func (r *run) start() error {
	r.step("starting %d groups × %d replicas in %s", r.Groups, r.Replicas, r.dir)
	var err error
	if r.ca, err = server.DevCA(r.tlsDir); err != nil {
		return err
	}
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Channel.Noise = 0.02
	r.keys, err = kme.StartService(r.ctx, kme.ServiceConfig{Addr: "127.0.0.1:0", TLSDir: r.tlsDir, Masters: []string{"client"}, Gateway: "gateway", QKD: qc, Logger: r.Logger})
	if err != nil {
		return err
	}
	keys := keyChannel(r.keys)
	if r.lc, err = server.StartLocal(r.ctx, server.LocalConfig{Dir: r.dir, Groups: r.Groups, Replicas: r.Replicas, Logger: r.Logger, Keys0: keys, CA: r.ca}); err != nil {
		return err
	}
	for i, n := range r.lc.Nodes {
		role := "follower"
		if n.IsLeader() {
			role = "leader"
		}
		r.printf("  node %s  group %d  %-8s  api %s\n", n.ID().Short(), n.Group(), role, r.lc.Addrs[i])
	}
	r.printf("  mutual TLS 1.3 between nodes and on every API; cluster CA and client certificates in %s\n", r.tlsDir)
	return r.makeClients()
}

func (r *run) makeClients() error {
	addrs := r.lc.Addrs
	r.clients = make([]*client.Client, len(addrs))
	var err error
	for i, a := range addrs {
		if r.clients[i], err = server.RoleClient(r.tlsDir, pki.RoleSubmitter, a); err != nil {
			return err
		}
	}
	if r.admin, err = server.RoleClient(r.tlsDir, pki.RoleAdmin, addrs[0]); err != nil {
		return err
	}
	r.auditor, err = server.RoleClient(r.tlsDir, pki.RoleAuditor, addrs[len(addrs)-1])
	return err
}

// verifyOffline stops the cluster and verifies every node's chain store.
func (r *run) verifyOffline() error {
	r.step("stopping the cluster and verifying every node's data directory offline")
	r.lc.Close()
	r.closed = true
	paths, err := fsm.FindStores(r.dir)
	if err != nil {
		return err
	}
	if len(paths) != r.Groups*r.Replicas {
		return failf("%d chain stores under %s, want %d", len(paths), r.dir, r.Groups*r.Replicas)
	}
	for _, p := range paths {
		rep, err := fsm.VerifyStoreFile(p)
		if err != nil {
			return fmt.Errorf("demo: %s: %w", p, err)
		}
		r.printf("%s: ok  group %d  %d blocks  %d transactions  head %s\n", p, rep.Group, rep.Blocks, rep.Txs, short(rep.Head.Hash().String()))
	}
	return nil
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
