package election

import (
	"context"
	"fmt"
	"time"
)

// Runner runs the request of an election on its nodes, for RunExecute.
// The leader's wiring implements it beside its Transport.
type Runner interface {
	// RevealRun asks nodeID for the nonce behind its commitment and, in
	// the same exchange, to run the request. An error means no nonce
	// arrived: the node is left out and nothing it ran is used. A run
	// that failed comes back with the nonce as an Execution with Failed
	// set. It must respect ctx's deadline.
	RevealRun(ctx context.Context, nodeID string, requestID []byte) ([Size]byte, Execution, error)
	// Run runs the request on nodeID alone: a node that moved up into the
	// executor's or verifier's place, or the tie-breaker.
	Run(ctx context.Context, nodeID string) Execution
}

// RunExecuteConfig describes one election and its executions for
// RunExecute.
type RunExecuteConfig struct {
	RunConfig
	// RunTimeout is how much longer than the reveal phase a node asked to
	// reveal and run has to answer: the request's own time limit and the
	// way back.
	RunTimeout time.Duration
	// RequireVerifier asks that nothing run unless at least two
	// candidates take part: with fewer than two commitments nobody is
	// asked to run, and a record without a verifier comes back with an
	// empty Verdict.
	RequireVerifier bool
	// Sealed, if set, is called once the commitments are sealed, before
	// anyone is asked to reveal (for the caller's timing).
	Sealed func()
}

// RunExecute is Run followed by Execute with one round trip less: once
// the commitments are sealed the ranking is fixed, so the two nodes
// ranked first (the executor and the verifier, unless one is left out)
// are asked to reveal their nonces and run the request in one exchange
// (Runner.RevealRun), while the others only reveal (Transport.Reveal).
//
// A node is still judged by its nonce first: one that does not reveal, or
// whose nonce does not match its commitment, is left out of the record
// and what it ran is dropped; the nodes that move up into its role run
// the request then (Runner.Run), as does the tie-breaker when the first
// two disagree. With honest nodes the record is the one Run returns and
// the verdict the one Execute returns for it; with a node that fails to
// reveal, the record is Run's and the verdict Execute's with that node
// left out, whereas Run followed by Execute would have recorded a
// revealed node that then failed to run as a failed execution.
//
// RunExecute fails like Run. No node is asked to run before the
// commitments are sealed, so every run belongs to a ranking that was
// already fixed.
func RunExecute(ctx context.Context, cfg RunExecuteConfig, t Transport, r Runner) (Record, Verdict, error) {
	if cfg.RunTimeout < 0 {
		return Record{}, Verdict{}, fmt.Errorf("%w: run timeout %s", ErrConfig, cfg.RunTimeout)
	}
	start := time.Now()
	col, ranking, err := commitPhase(ctx, cfg.RunConfig, 2*cfg.Phase+cfg.RunTimeout, t, start)
	if err != nil {
		return Record{}, Verdict{}, err
	}
	if cfg.Sealed != nil {
		cfg.Sealed()
	}
	speculate := min(2, len(ranking))
	if cfg.RequireVerifier && len(ranking) < 2 {
		speculate = 0
	}
	ran := make([]*Execution, len(ranking))
	revealEnd := start.Add(2 * cfg.Phase)
	rctx, cancel := context.WithDeadline(ctx, revealEnd)
	xctx, xcancel := context.WithDeadline(ctx, revealEnd.Add(cfg.RunTimeout))
	each(len(ranking), func(i int) {
		id := ranking[i].NodeID
		if i >= speculate {
			reveal(rctx, col, t, id, cfg.RequestID)
			return
		}
		nonce, x, err := r.RevealRun(xctx, id, cfg.RequestID)
		if err == nil && col.Reveal(id, nonce) == nil {
			x = withID(x, id)
			ran[i] = &x
		}
	})
	cancel()
	xcancel()
	rec, _, err := col.Record()
	if err != nil {
		return Record{}, Verdict{}, err
	}
	if cfg.RequireVerifier && rec.Verifier() == "" {
		return rec, Verdict{}, nil
	}
	done := make(map[string]Execution, speculate)
	for i, x := range ran {
		if x != nil {
			done[ranking[i].NodeID] = *x
		}
	}
	v := Execute(rec, func(id string) Execution {
		if x, ok := done[id]; ok {
			return x
		}
		return r.Run(ctx, id)
	})
	return rec, v, nil
}
