package demo

import (
	"fmt"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/pki"
	"qledger/server"
)

// afterFailover checks an inclusion proof from another node, kills the
// leader of the proven transaction's group, writes through a survivor,
// and proves the log before the kill is a prefix of the log after it.
func (r *run) afterFailover() error {
	r.step("inclusion proof, fetched from another node and verified here")
	probe := r.receipts[len(r.receipts)/2]
	other := r.clients[len(r.clients)-1]
	tx, err := other.Tx(r.ctx, probe.ID, "")
	if err != nil {
		return err
	}
	headA, err := other.Head(r.ctx, probe.Group, "")
	if err != nil {
		return err
	}
	if err := client.VerifyTxAgainstHead(tx, headA); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	r.printf("  tx %s: leaf %d of %d, %d proof hashes -> root %s = head %d's log root: verified\n", short(tx.ID), tx.Proof.LeafIndex, tx.Proof.TreeSize, len(tx.Proof.Hashes), short(tx.Proof.Root), headA.Height)

	r.step("killing the leader of group %d and writing through the survivors", probe.Group)
	survivor, err := r.killLeader(probe.Group)
	if err != nil {
		return err
	}
	r.step("consistency proof between the head before and after")
	headB, err := survivor.Head(r.ctx, probe.Group, "linearizable")
	if err != nil {
		return err
	}
	cp, err := survivor.Consistency(r.ctx, probe.Group, headA.LogSize, headB.LogSize, "")
	if err != nil {
		return err
	}
	if err := client.VerifyConsistency(cp, headA.LogRoot, headB.LogRoot); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	r.printf("  log size %d -> %d, %d proof hashes: the old log is a prefix of the new one: verified\n", cp.From, cp.To, len(cp.Hashes))
	return nil
}

// killLeader kills group's leader, writes 20 transactions to the group
// through a surviving node and returns that node's client. The auditor is
// moved off the killed node if it was there.
func (r *run) killLeader(group int) (*client.Client, error) {
	leader, ok := r.lc.Leader(group)
	if !ok {
		return nil, failf("group %d has no leader", group)
	}
	killed := leader.ID()
	r.lc.Kill(r.ctx, leader)
	survivor := r.survivor(leader)
	r.reader = survivor
	t1 := time.Now()
	for i := 0; i < 20; i++ {
		g := group
		rc, _, err := survivor.Submit(r.ctx, []byte(fmt.Sprintf("after failover %d", i)), client.SubmitOptions{Group: &g, IdempotencyKey: fmt.Sprintf("failover-%d", i)})
		if err != nil {
			return nil, fmt.Errorf("demo: submit after killing the leader: %w", err)
		}
		r.after = append(r.after, rc)
	}
	newLeader, _ := r.lc.Leader(group)
	r.printf("  killed %s; new leader %s; 20 writes committed in %s (includes the election)\n", killed.Short(), newLeader.ID().Short(), time.Since(t1).Round(time.Millisecond))
	if last := len(r.lc.Nodes) - 1; r.lc.Nodes[last] == leader {
		var err error
		if r.auditor, err = server.RoleClient(r.tlsDir, pki.RoleAuditor, r.lc.Addrs[0]); err != nil {
			return nil, err
		}
	}
	return survivor, nil
}

// survivor is the submitter client of the first node that is not dead.
func (r *run) survivor(dead *cluster.Node) *client.Client {
	for i, n := range r.lc.Nodes {
		if n != dead {
			return r.clients[i]
		}
	}
	return nil
}

// total is the number of transactions the chains must hold: the writes,
// the idempotent one, the sealed one, one deploy per group and one
// execution record per invocation.
func (r *run) total() uint64 {
	return uint64(len(r.receipts) + 2 + len(r.after) + r.Groups + r.invoked)
}

// verifyAll verifies every chain over the API as an auditor, each head's
// signature against the CA, the transaction count, and every acknowledged
// write at its receipt's position.
func (r *run) verifyAll() error {
	r.step("verifying every chain over the API, as an auditor")
	var total uint64
	for g := 0; g < r.Groups; g++ {
		rep, err := r.auditor.VerifyGroup(r.ctx, g)
		if err != nil {
			return fmt.Errorf("demo: group %d: %w", g, err)
		}
		total += rep.Txs
		h, err := r.auditor.Head(r.ctx, g, "")
		if err != nil {
			return err
		}
		signer, err := client.VerifyHeadSignature(h, r.ca.Pool())
		if err != nil {
			return fmt.Errorf("demo: group %d: %w", g, err)
		}
		r.printf("  group %d: %d blocks, %d transactions, head %s: ok; head %d signed by its leader %.12s, signature verified against the CA\n", g, rep.Blocks, rep.Txs, short(rep.Head.Hash), h.Height, signer.NodeID)
	}
	if want := r.total(); total != want {
		return failf("chains hold %d transactions, %d were acknowledged", total, want)
	}
	for _, rc := range append(append([]client.Receipt(nil), r.receipts...), r.after...) {
		tx, err := r.reader.Tx(r.ctx, rc.ID, "stale")
		if err != nil || tx.Index != rc.Index || tx.Height != rc.Height {
			return failf("acknowledged transaction %s not found where its receipt says: %v", rc.ID, err)
		}
	}
	r.printf("  %d transactions in all; every acknowledged write found at its receipt's position\n", r.total())
	return nil
}
