package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/chain"
	"qledger/election"
	"qledger/examples/functions/tiny"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/session"
)

// runDemo is the main scenario end to end on a throwaway cluster: writes to
// every group, an idempotent retry, a proof verified client-side, a
// consistency proof between two heads, a leader killed and replaced, every
// chain verified over the API and then offline from the data directories.
func (a *app) demoCmd() *cobra.Command {
	var (
		groups, replicas, txs int
		keep                  bool
		logLevel              string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "start a throwaway cluster, run the main scenario, print a report",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runDemo(&groups, &replicas, &txs, &keep, &logLevel)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&groups, "groups", 2, "node groups")
	fs.IntVar(&replicas, "replicas", 3, "nodes per group")
	fs.IntVar(&txs, "txs", 500, "transactions to submit")
	fs.BoolVar(&keep, "keep", false, "keep the data directory")
	fs.StringVar(&logLevel, "log-level", "off", "log level")
	return cmd
}

func (a *app) runDemo(groups, replicas, txs *int, keep *bool, logLevel *string) error {
	if *groups < 1 || *replicas < 3 || *txs < 1 {
		return usageErrorf("demo: need groups >= 1, replicas >= 3 (a leader is killed), txs >= 1")
	}
	dir, err := os.MkdirTemp("", "qledger-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	step := func(format string, args ...any) { fmt.Fprintf(a.stdout, "\n== "+format+"\n", args...) }
	start := time.Now()

	step("starting %d groups × %d replicas in %s", *groups, *replicas, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := a.logger(*logLevel)
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Channel.Noise = 0.02
	tlsDir := filepath.Join(dir, "tls")
	ca, err := devCA(tlsDir)
	if err != nil {
		return err
	}
	ks, err := startKeyService(ctx, keyServiceConfig{Addr: "127.0.0.1:0", TLSDir: tlsDir, Masters: []string{"client"}, Gateway: "gateway", QKD: qc, Logger: logger})
	if err != nil {
		return err
	}
	defer ks.Close()
	lc, err := startCluster(ctx, dir, *groups, *replicas, "127.0.0.1:0", clusterOpts{logger: logger, keys0: ks.Channel, ca: ca})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			lc.Close()
		}
	}()
	for i, n := range lc.Nodes {
		role := "follower"
		if n.IsLeader() {
			role = "leader"
		}
		fmt.Fprintf(a.stdout, "  node %s  group %d  %-8s  api %s\n", n.ID().Short(), n.Group(), role, lc.addrs[i])
	}
	fmt.Fprintf(a.stdout, "  mutual TLS 1.3 between nodes and on every API; cluster CA and client certificates in %s\n", tlsDir)
	// Submitters write through every node; an admin deploys functions; an
	// auditor verifies the chains.
	clients := make([]*client.Client, len(lc.addrs))
	for i, a := range lc.addrs {
		if clients[i], err = roleClient(tlsDir, pki.RoleSubmitter, a); err != nil {
			return err
		}
	}
	c0 := clients[0]
	admin, err := roleClient(tlsDir, pki.RoleAdmin, lc.addrs[0])
	if err != nil {
		return err
	}
	auditor, err := roleClient(tlsDir, pki.RoleAuditor, lc.addrs[len(lc.addrs)-1])
	if err != nil {
		return err
	}
	anonymous, err := client.NewTLS(lc.addrs[0], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}

	step("roles: every endpoint checks the caller's certificate")
	_, _, err = anonymous.Submit(ctx, []byte("anonymous"), client.SubmitOptions{})
	if !client.IsStatus(err, 401) {
		return fmt.Errorf("demo: a write without a client certificate was not refused with 401: %v", err)
	}
	fmt.Fprintf(a.stdout, "  no client certificate: refused (%v)\n", err)
	_, _, err = auditor.Submit(ctx, []byte("an auditor writing"), client.SubmitOptions{})
	if !client.IsStatus(err, 403) {
		return fmt.Errorf("demo: a write with an auditor certificate was not refused with 403: %v", err)
	}
	fmt.Fprintf(a.stdout, "  auditor writing: refused (%v)\n", err)

	step("submitting %d transactions through every node's API, 16 at a time", *txs)
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		receipts []client.Receipt
	)
	t0 := time.Now()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clients[w%len(clients)]
			for {
				i := next.Add(1) - 1
				if i >= int64(*txs) {
					return
				}
				g := int(i) % *groups
				r, _, err := c.Submit(ctx, []byte(fmt.Sprintf(`{"order":%d,"amount":%d}`, i, 100+i)), client.SubmitOptions{Group: &g})
				if err != nil {
					failures.Add(1)
					fmt.Fprintln(a.stderr, "  submit failed:", err)
					continue
				}
				mu.Lock()
				receipts = append(receipts, r)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(t0)
	if failures.Load() > 0 {
		return fmt.Errorf("demo: %d submissions failed", failures.Load())
	}
	fmt.Fprintf(a.stdout, "  %d committed in %s (%.0f tx/s)\n", len(receipts), el.Round(time.Millisecond), float64(len(receipts))/el.Seconds())
	for g := 0; g < *groups; g++ {
		h, err := c0.Head(ctx, g, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "  group %d: %d transactions in %d blocks\n", g, h.LogSize, h.Height)
	}

	step("idempotent retry: the same Idempotency-Key twice")
	r1, _, err := c0.Submit(ctx, []byte("transfer 42 to bob"), client.SubmitOptions{IdempotencyKey: "demo-transfer-1"})
	if err != nil {
		return err
	}
	r2, replayed, err := clients[len(clients)-1].Submit(ctx, []byte("transfer 42 to bob"), client.SubmitOptions{IdempotencyKey: "demo-transfer-1"})
	if err != nil {
		return err
	}
	if r1 != r2 || !replayed {
		return fmt.Errorf("demo: retry gave %+v (replayed %v), first %+v", r2, replayed, r1)
	}
	fmt.Fprintf(a.stdout, "  first:  %s at group %d height %d\n  retry:  same receipt, answered from the de-duplication table\n", short(r1.ID), r1.Group, r1.Height)
	if _, _, err := c0.Submit(ctx, []byte("transfer 999 to eve"), client.SubmitOptions{IdempotencyKey: "demo-transfer-1"}); err == nil {
		return fmt.Errorf("demo: a different body under a used key was accepted")
	} else {
		fmt.Fprintf(a.stdout, "  same key, different body: refused (%v)\n", err)
	}

	step("quantum-keyed channel: BB84 key from the ETSI GS QKD 014 key manager + ML-KEM-768")
	kc, err := kmeClient(ks.URL, ks.TLSDir, "client")
	if err != nil {
		return err
	}
	if err := ks.waitKeys(ctx, "client"); err != nil {
		return err
	}
	sess, err := c0.OpenSession(ctx, kc, "client", "gateway", session.DefaultConfig())
	if err != nil {
		return fmt.Errorf("demo: session: %w", err)
	}
	sr, _, err := sess.Submit(ctx, []byte("sealed: transfer 7 to carol"), client.SubmitOptions{})
	if err != nil {
		return fmt.Errorf("demo: sealed submit: %w", err)
	}
	fmt.Fprintf(a.stdout, "  QKD key %s (simulated BB84, QBER ~1%%, Cascade, privacy amplification) + ML-KEM-768 -> session key\n", sess.KeyID)
	fmt.Fprintf(a.stdout, "  sealed write committed: %s at group %d height %d\n", short(sr.ID), sr.Group, sr.Height)
	eve := qc
	eve.Channel.Eve = 1
	if st, err := qkd.Run(eve); err == nil {
		return fmt.Errorf("demo: an eavesdropper on every qubit went unnoticed")
	} else {
		fmt.Fprintf(a.stdout, "  with an eavesdropper on every qubit: QBER %.1f%%, no key issued:\n    %v\n", 100*st.QBER, err)
	}

	step("verified serverless execution: a WebAssembly function as a contract")
	code, _ := tiny.Module("tinyinc")
	if _, err := admin.Deploy(ctx, client.DeployRequest{Name: "increment", Version: "1", Code: code}); err != nil {
		return fmt.Errorf("demo: deploy: %w", err)
	}
	fmt.Fprintf(a.stdout, "  deployed increment (%d-byte module) to every group, as admin\n", len(code))
	invoked := 0
	for i := 0; i < 3; i++ {
		res, err := sess.Invoke(ctx, "increment", []byte(fmt.Sprintf(`{"value":%d}`, 100*i)), nil)
		if err != nil {
			return fmt.Errorf("demo: invoke: %w", err)
		}
		if err := election.VerifyWithSessionKey(res.Election, sess.SessionKey()); err != nil {
			return fmt.Errorf("demo: election record: %w", err)
		}
		invoked++
		fmt.Fprintf(a.stdout, "  %s -> %s  group %d: executor %s, verifier %s of %d candidates, results agree: %v (election checked here)\n",
			fmt.Sprintf(`{"value":%d}`, 100*i), res.Output, res.Group, short(res.Executor), short(res.Verifier), len(res.Election.Candidates), res.Verified)
	}

	step("inclusion proof, fetched from another node and verified here")
	probe := receipts[len(receipts)/2]
	other := clients[len(clients)-1]
	tx, err := other.Tx(ctx, probe.ID, "")
	if err != nil {
		return err
	}
	headA, err := other.Head(ctx, probe.Group, "")
	if err != nil {
		return err
	}
	if err := client.VerifyTxAgainstHead(tx, headA); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(a.stdout, "  tx %s: leaf %d of %d, %d proof hashes -> root %s = head %d's log root: verified\n", short(tx.ID), tx.Proof.LeafIndex, tx.Proof.TreeSize, len(tx.Proof.Hashes), short(tx.Proof.Root), headA.Height)

	step("killing the leader of group %d and writing through the survivors", probe.Group)
	leader, ok := lc.Leader(probe.Group)
	if !ok {
		return fmt.Errorf("demo: group %d has no leader", probe.Group)
	}
	killed := leader.ID()
	for i, n := range lc.Nodes {
		if n == leader {
			_ = lc.servers[i].Shutdown(ctx)
		}
	}
	leader.Close()
	var survivor *client.Client
	for i, n := range lc.Nodes {
		if n != leader {
			survivor = clients[i]
			break
		}
	}
	t1 := time.Now()
	var afterKill []client.Receipt
	for i := 0; i < 20; i++ {
		g := probe.Group
		r, _, err := survivor.Submit(ctx, []byte(fmt.Sprintf("after failover %d", i)), client.SubmitOptions{Group: &g, IdempotencyKey: fmt.Sprintf("failover-%d", i)})
		if err != nil {
			return fmt.Errorf("demo: submit after killing the leader: %w", err)
		}
		afterKill = append(afterKill, r)
	}
	newLeader, _ := lc.Leader(probe.Group)
	fmt.Fprintf(a.stdout, "  killed %s; new leader %s; 20 writes committed in %s (includes the election)\n", killed.Short(), newLeader.ID().Short(), time.Since(t1).Round(time.Millisecond))

	step("consistency proof between the head before and after")
	headB, err := survivor.Head(ctx, probe.Group, "linearizable")
	if err != nil {
		return err
	}
	cp, err := survivor.Consistency(ctx, probe.Group, headA.LogSize, headB.LogSize, "")
	if err != nil {
		return err
	}
	if err := client.VerifyConsistency(cp, headA.LogRoot, headB.LogRoot); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(a.stdout, "  log size %d -> %d, %d proof hashes: the old log is a prefix of the new one: verified\n", cp.From, cp.To, len(cp.Hashes))

	step("verifying every chain over the API, as an auditor")
	if auditor.Base() == lc.addrs[len(lc.addrs)-1] && lc.Nodes[len(lc.Nodes)-1] == leader {
		auditor, _ = roleClient(tlsDir, pki.RoleAuditor, lc.addrs[0])
	}
	var total uint64
	for g := 0; g < *groups; g++ {
		rep, err := auditor.VerifyGroup(ctx, g)
		if err != nil {
			return fmt.Errorf("demo: group %d: %w", g, err)
		}
		total += rep.Txs
		h, err := auditor.Head(ctx, g, "")
		if err != nil {
			return err
		}
		signer, err := client.VerifyHeadSignature(h, ca.Pool())
		if err != nil {
			return fmt.Errorf("demo: group %d: %w", g, err)
		}
		fmt.Fprintf(a.stdout, "  group %d: %d blocks, %d transactions, head %s: ok; head %d signed by its leader %.12s, signature verified against the CA\n", g, rep.Blocks, rep.Txs, short(rep.Head.Hash), h.Height, signer.NodeID)
	}
	// Writes, the idempotent one, the sealed one, one deploy per group,
	// one execution record per invocation.
	want := uint64(len(receipts) + 2 + len(afterKill) + *groups + invoked)
	if total != want {
		return fmt.Errorf("demo: chains hold %d transactions, %d were acknowledged", total, want)
	}
	// Every acknowledged write is there, exactly where its receipt says.
	for _, r := range append(receipts, afterKill...) {
		tx, err := survivor.Tx(ctx, r.ID, "stale")
		if err != nil || tx.Index != r.Index || tx.Height != r.Height {
			return fmt.Errorf("demo: acknowledged transaction %s not found where its receipt says: %v", r.ID, err)
		}
	}
	fmt.Fprintf(a.stdout, "  %d transactions in all; every acknowledged write found at its receipt's position\n", want)

	step("stopping the cluster and verifying every node's data directory offline")
	lc.Close()
	closed = true
	if err := a.verifyOffline(dir); err != nil {
		return err
	}

	step("report")
	fmt.Fprintf(a.stdout, "  groups %d × replicas %d, %d transactions committed and verified (one through the quantum-keyed channel, %d verified executions), leader failover survived, %s total\n", *groups, *replicas, want, invoked, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(a.stdout, "  Merkle hashing RFC 6962 (empty root %s…)\n", chain.EmptyRoot().String()[:16])
	fmt.Fprintln(a.stdout, "demo: OK")
	return nil
}
