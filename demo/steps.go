package demo

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"qledger/api"
	"qledger/api/client"
	"qledger/election"
	"qledger/examples/functions/tiny"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

// keyChannel is the gateway's key channel on the service, in process.
func keyChannel(ks *kme.Service) *api.KeyChannel {
	return &api.KeyChannel{KME: ks.KME.Local(ks.Gateway), GatewaySAE: ks.Gateway}
}

// roles checks that a caller without a certificate and an auditor writing
// are refused.
func (r *run) roles() error {
	r.step("roles: every endpoint checks the caller's certificate")
	anonymous, err := client.NewTLS(r.lc.Addrs[0], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	_, _, err = anonymous.Submit(r.ctx, []byte("anonymous"), client.SubmitOptions{})
	if !client.IsStatus(err, 401) {
		return failf("a write without a client certificate was not refused with 401: %v", err)
	}
	r.printf("  no client certificate: refused (%v)\n", err)
	_, _, err = r.auditor.Submit(r.ctx, []byte("an auditor writing"), client.SubmitOptions{})
	if !client.IsStatus(err, 403) {
		return failf("a write with an auditor certificate was not refused with 403: %v", err)
	}
	r.printf("  auditor writing: refused (%v)\n", err)
	return nil
}

// submitAll writes Txs transactions round-robin over the groups through
// every node's API, 16 at a time.
func (r *run) submitAll() error {
	r.step("submitting %d transactions through every node's API, 16 at a time", r.Txs)
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
	)
	t0 := time.Now()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(c *client.Client) {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(r.Txs); i = next.Add(1) - 1 {
				g := int(i) % r.Groups
				rc, _, err := c.Submit(r.ctx, []byte(fmt.Sprintf(`{"order":%d,"amount":%d}`, i, 100+i)), client.SubmitOptions{Group: &g})
				if err != nil {
					failures.Add(1)
					r.printf("  submit failed: %v\n", err)
					continue
				}
				mu.Lock()
				r.receipts = append(r.receipts, rc)
				mu.Unlock()
			}
		}(r.clients[w%len(r.clients)])
	}
	wg.Wait()
	el := time.Since(t0)
	if n := failures.Load(); n > 0 {
		return failf("%d submissions failed", n)
	}
	r.printf("  %d committed in %s (%.0f tx/s)\n", len(r.receipts), el.Round(time.Millisecond), float64(len(r.receipts))/el.Seconds())
	for g := 0; g < r.Groups; g++ {
		h, err := r.clients[0].Head(r.ctx, g, "")
		if err != nil {
			return err
		}
		r.printf("  group %d: %d transactions in %d blocks\n", g, h.LogSize, h.Height)
	}
	return nil
}

// idempotentRetry sends the same keyed write through two nodes, and
// another body under the same key.
func (r *run) idempotentRetry() error {
	r.step("idempotent retry: the same Idempotency-Key twice")
	c0, last := r.clients[0], r.clients[len(r.clients)-1]
	opt := client.SubmitOptions{IdempotencyKey: "demo-transfer-1"}
	r1, _, err := c0.Submit(r.ctx, []byte("transfer 42 to bob"), opt)
	if err != nil {
		return err
	}
	r2, replayed, err := last.Submit(r.ctx, []byte("transfer 42 to bob"), opt)
	if err != nil {
		return err
	}
	if r1 != r2 || !replayed {
		return failf("retry gave %+v (replayed %v), first %+v", r2, replayed, r1)
	}
	r.printf("  first:  %s at group %d height %d\n  retry:  same receipt, answered from the de-duplication table\n", short(r1.ID), r1.Group, r1.Height)
	if _, _, err := c0.Submit(r.ctx, []byte("transfer 999 to eve"), opt); err == nil {
		return failf("a different body under a used key was accepted")
	} else {
		r.printf("  same key, different body: refused (%v)\n", err)
	}
	return nil
}

// keyedChannel writes through the quantum-keyed channel and shows an
// eavesdropper aborting the key exchange.
func (r *run) keyedChannel() error {
	r.step("quantum-keyed channel: BB84 key from the ETSI GS QKD 014 key manager + ML-KEM-768")
	sess, err := r.session()
	if err != nil {
		return err
	}
	r.sess = sess
	sr, _, err := sess.Submit(r.ctx, []byte("sealed: transfer 7 to carol"), client.SubmitOptions{})
	if err != nil {
		return fmt.Errorf("demo: sealed submit: %w", err)
	}
	r.printf("  QKD key %s (simulated BB84, QBER ~1%%, Cascade, privacy amplification) + ML-KEM-768 -> session key\n", sess.KeyID)
	r.printf("  sealed write committed: %s at group %d height %d\n", short(sr.ID), sr.Group, sr.Height)
	eve := qkd.DefaultConfig()
	eve.Qubits = 1 << 18
	eve.Channel.Noise = 0.02
	eve.Channel.Eve = 1
	if st, err := qkd.Run(eve); err == nil {
		return failf("an eavesdropper on every qubit went unnoticed")
	} else {
		r.printf("  with an eavesdropper on every qubit: QBER %.1f%%, no key issued:\n    %v\n", 100*st.QBER, err)
	}
	return nil
}

// session opens a session on node 0 as the client SAE.
func (r *run) session() (*client.Session, error) {
	kc, err := kme.ClientFor(r.keys.URL, r.keys.TLSDir, "client")
	if err != nil {
		return nil, err
	}
	if err := r.keys.WaitKeys(r.ctx, "client"); err != nil {
		return nil, err
	}
	sess, err := r.clients[0].OpenSession(r.ctx, kc, "client", "gateway", session.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("demo: session: %w", err)
	}
	return sess, nil
}

// functions deploys a function as admin and invokes it through a session,
// checking each election record with the session key.
func (r *run) functions() error {
	r.step("verified serverless execution: a WebAssembly function as a contract")
	code, _ := tiny.Module("tinyinc")
	if _, err := r.admin.Deploy(r.ctx, client.DeployRequest{Name: "increment", Version: "1", Code: code}); err != nil {
		return fmt.Errorf("demo: deploy: %w", err)
	}
	r.printf("  deployed increment (%d-byte module) to every group, as admin\n", len(code))
	sess := r.sess
	for i := 0; i < 3; i++ {
		in := fmt.Sprintf(`{"value":%d}`, 100*i)
		res, err := sess.Invoke(r.ctx, "increment", []byte(in), nil)
		if err != nil {
			return fmt.Errorf("demo: invoke: %w", err)
		}
		if err := election.VerifyWithSessionKey(res.Election, sess.SessionKey()); err != nil {
			return fmt.Errorf("demo: election record: %w", err)
		}
		r.invoked++
		r.printf("  %s -> %s  group %d: executor %s, verifier %s of %d candidates, results agree: %v (election checked here)\n",
			in, res.Output, res.Group, short(res.Executor), short(res.Verifier), len(res.Election.Candidates), res.Verified)
	}
	return nil
}
