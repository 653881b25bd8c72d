package election

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Transport reaches the candidates of an election: the leader's wiring
// implements it with its own RPC (and answers for itself from its own
// Nonces). Each call is for one node and must respect ctx's deadline.
type Transport interface {
	// Commit asks nodeID to commit to a fresh nonce for requestID and
	// returns its h = SHA-256(nonce); or it answers, without asking, with
	// a pledge nodeID made before the request existed (Pledges).
	Commit(ctx context.Context, nodeID string, requestID []byte) ([Size]byte, error)
	// Reveal asks nodeID for the nonce behind the commitment Commit
	// returned.
	Reveal(ctx context.Context, nodeID string, requestID []byte) ([Size]byte, error)
}

// RunConfig describes one election for Run.
type RunConfig struct {
	// RequestID is the request the election is for (1..255 bytes).
	RequestID []byte
	// KeyID names the session key the election key came from.
	KeyID string
	// Key is the election key (DeriveKey); candidates never see it.
	Key [Size]byte
	// Candidates are the node IDs asked to take part.
	Candidates []string
	// Phase is how long each phase (commit, then reveal) waits for
	// answers; a node that has not answered by then is left out.
	Phase time.Duration
}

// Run holds one election on the leader over t: every candidate commits to
// a nonce (in parallel, within cfg.Phase); the commitments are sealed,
// which fixes the ranking; every node that committed reveals its nonce
// (within another cfg.Phase), checked against its commitment. A node whose
// commitment or nonce fails, arrives late or does not match is left out;
// the others keep their relative order. The result is the verifiable
// record of the nodes that revealed: Executor, Verifier and TieBreaker
// name the roles.
//
// Run fails with ErrNoCandidates if no node both committed and revealed,
// and with ErrConfig if cfg is invalid. It returns early if ctx ends.
func Run(ctx context.Context, cfg RunConfig, t Transport) (Record, error) {
	start := time.Now()
	col, ranking, err := commitPhase(ctx, cfg, 2*cfg.Phase, t, start)
	if err != nil {
		return Record{}, err
	}
	rctx, cancel := context.WithDeadline(ctx, start.Add(2*cfg.Phase))
	each(len(ranking), func(i int) { reveal(rctx, col, t, ranking[i].NodeID, cfg.RequestID) })
	cancel()
	rec, _, err := col.Record()
	return rec, err
}

// commitPhase opens the Collector of an election that starts at start,
// whose reveals are accepted until start+revealBy, asks every candidate
// to commit within cfg.Phase, and seals the ranking.
func commitPhase(ctx context.Context, cfg RunConfig, revealBy time.Duration, t Transport, start time.Time) (*Collector, []Candidate, error) {
	if cfg.Phase <= 0 {
		return nil, nil, fmt.Errorf("%w: phase %s", ErrConfig, cfg.Phase)
	}
	col, err := NewCollector(CollectorConfig{
		RequestID:      cfg.RequestID,
		KeyID:          cfg.KeyID,
		Key:            cfg.Key,
		Expected:       cfg.Candidates,
		CommitDeadline: start.Add(cfg.Phase),
		RevealDeadline: start.Add(revealBy),
	})
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Phase))
	each(len(cfg.Candidates), func(i int) {
		id := cfg.Candidates[i]
		if h, err := t.Commit(cctx, id, cfg.RequestID); err == nil {
			_ = col.Commit(id, h) // refused: late, unexpected or twice; left out
		}
	})
	cancel()
	ranking, err := col.Seal()
	if err != nil {
		return nil, nil, err
	}
	return col, ranking, nil
}

// reveal asks id for its nonce and hands it to col.
func reveal(ctx context.Context, col *Collector, t Transport, id string, requestID []byte) {
	if nonce, err := t.Reveal(ctx, id, requestID); err == nil {
		_ = col.Reveal(id, nonce) // refused: late or not matching; left out
	}
}

// each calls f(0..n-1) concurrently and waits for all.
func each(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}
