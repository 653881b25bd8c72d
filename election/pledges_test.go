package election

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// A pledge is revealed once, by its h, until NonceTTL; a candidate keeps
// at most MaxPledges unrevealed.
func TestNoncesPledge(t *testing.T) {
	clk := &fakeClock{t: t0}
	n := Nonces{Now: clk.now}
	h, err := n.Pledge()
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := n.RevealPledge(h)
	if err != nil || HashNonce(nonce) != h {
		t.Fatalf("reveal: %v", err)
	}
	if _, err := n.RevealPledge(h); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("second reveal: %v, want ErrNoCommitment", err)
	}
	if _, err := n.RevealPledge([Size]byte{1}); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("reveal of a pledge never made: %v, want ErrNoCommitment", err)
	}
	// A pledge and a commitment for a request are apart.
	if _, err := n.Reveal(h[:]); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("a pledge revealed as a request's commitment: %v", err)
	}
	old, _ := n.Pledge()
	clk.advance(NonceTTL + time.Second)
	if _, err := n.RevealPledge(old); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("expired pledge: %v, want ErrNoCommitment", err)
	}
	for range MaxPledges {
		if _, err := n.Pledge(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Pledge(); !errors.Is(err, ErrTooManyPledges) {
		t.Fatalf("pledge %d: %v, want ErrTooManyPledges", MaxPledges+1, err)
	}
	clk.advance(NonceTTL + time.Second)
	if _, err := n.Pledge(); err != nil {
		t.Fatalf("pledge after the others expired: %v", err)
	}
}

// Pledges hands each pledge out once, oldest first, not after PledgeUse,
// keeps at most MaxPledgesPerNode per node, and forgets a node's on
// request.
func TestPledges(t *testing.T) {
	clk := &fakeClock{t: t0}
	p := Pledges{Now: clk.now}
	if _, ok := p.Take("n1"); ok {
		t.Fatal("a pledge from nowhere")
	}
	p.Add("n1", [Size]byte{1})
	clk.advance(time.Second)
	p.Add("n1", [Size]byte{2})
	p.Add("n2", [Size]byte{3})
	if h, ok := p.Take("n1"); !ok || h != ([Size]byte{1}) {
		t.Fatalf("first take: %x %v, want the oldest", h[:1], ok)
	}
	clk.advance(PledgeUse)
	if h, ok := p.Take("n1"); !ok || h != ([Size]byte{2}) {
		t.Fatalf("second take: %x %v", h[:1], ok)
	}
	if _, ok := p.Take("n1"); ok {
		t.Fatal("a pledge handed out twice")
	}
	clk.advance(time.Second)
	if _, ok := p.Take("n2"); ok || p.Len("n2") != 0 {
		t.Fatal("a pledge older than PledgeUse handed out")
	}
	for i := range MaxPledgesPerNode + 5 {
		p.Add("n3", [Size]byte{byte(i)})
	}
	if got := p.Len("n3"); got != MaxPledgesPerNode {
		t.Fatalf("%d pledges kept, want %d", got, MaxPledgesPerNode)
	}
	p.Forget("n3")
	if _, ok := p.Take("n3"); ok {
		t.Fatal("a forgotten pledge handed out")
	}
}

// An election whose commitments are pledges is the election Run holds
// with the same nonces: Transport.Commit may answer from pledges.
func TestRunWithPledges(t *testing.T) {
	var cands [3]Nonces
	ids := []string{"n1", "n2", "n3"}
	var pool Pledges
	for i, id := range ids {
		h, err := cands[i].Pledge()
		if err != nil {
			t.Fatal(err)
		}
		pool.Add(id, h)
	}
	cfg, key := runConfig(t, ids...)
	var mu sync.Mutex
	used := map[string][Size]byte{}
	tr := fakeTransport{
		commit: func(_ context.Context, id string) ([Size]byte, error) {
			h, ok := pool.Take(id)
			if !ok {
				return h, errors.New("no pledge")
			}
			mu.Lock()
			defer mu.Unlock()
			used[id] = h
			return h, nil
		},
		reveal: func(_ context.Context, id string) ([Size]byte, error) {
			mu.Lock()
			h := used[id]
			mu.Unlock()
			return cands[slices.Index(ids, id)].RevealPledge(h)
		},
	}
	rec, err := Run(context.Background(), cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Candidates) != 3 {
		t.Fatalf("%d candidates, want 3", len(rec.Candidates))
	}
	if err := VerifyWithKey(rec, key); err != nil {
		t.Fatal(err)
	}
}
