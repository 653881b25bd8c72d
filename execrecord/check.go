package execrecord

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"qledger/election"
	"qledger/function"
)

// Check verifies that a record is what an honest leader writes for its
// election and executions. It is pure and deterministic, so every replica
// reaches the same verdict on the same bytes; the state machine applies it
// to every execution record before appending it. It checks, in order:
//
//   - the election (election.Verify): every h is SHA-256 of its nonce, one
//     election key underlies every stake and matches the key commitment,
//     the candidates are in ranking order — and it is for this request;
//   - the input hash is SHA-256 of the input;
//   - the roles: the executor is the highest stake, the verifier the
//     runner-up ("" with a single candidate), the tie-breaker the third
//     and named only when it ran;
//   - the executions: the executor's, then the verifier's, then the
//     tie-breaker's exactly when the first two did not agree; an execution
//     that ran has a valid outcome and the hash of its own result
//     (function.ResultHash);
//   - the outcome follows from them (Verdict): agreed and verified as the
//     executions decide, the result and response those of the agreeing
//     executions, a conflict described whenever there was one.
//
// The first failure is reported wrapped in one of ErrElection,
// ErrInputHash, ErrRoles, ErrExecutions or ErrOutcome.
func Check(r Record) error {
	if err := election.Verify(r.Election); err != nil {
		return fmt.Errorf("%w: %w", ErrElection, err)
	}
	if !bytes.Equal(r.Election.RequestID, r.RequestID[:]) {
		return fmt.Errorf("%w: held for request %x, recorded for %x", ErrElection, r.Election.RequestID, r.RequestID[:])
	}
	if sha256.Sum256(r.Input) != r.InputHash {
		return ErrInputHash
	}
	if err := checkRoles(r); err != nil {
		return err
	}
	if err := checkExecutions(r); err != nil {
		return err
	}
	return checkVerdict(r)
}

// checkRoles: the roles are the election's, the tie-breaker named only
// when it ran.
func checkRoles(r Record) error {
	el := r.Election
	if r.Executor != el.Executor() || r.Verifier != el.Verifier() {
		return fmt.Errorf("%w: executor %q and verifier %q, the election chose %q and %q", ErrRoles, r.Executor, r.Verifier, el.Executor(), el.Verifier())
	}
	ran := len(r.Executions) == 3
	if r.TieBreaker != "" && (!ran || r.TieBreaker != el.TieBreaker()) {
		return fmt.Errorf("%w: tie-breaker %q (the election chose %q; %d executions)", ErrRoles, r.TieBreaker, el.TieBreaker(), len(r.Executions))
	}
	if ran && r.TieBreaker == "" {
		return fmt.Errorf("%w: a third execution without a tie-breaker", ErrRoles)
	}
	return nil
}

// checkExecutions: one execution per role asked, in role order, the
// tie-breaker's exactly when the first ones did not agree; each that ran
// carries the hash of its own result.
func checkExecutions(r Record) error {
	want := []string{r.Executor}
	if r.Verifier != "" {
		want = append(want, r.Verifier)
	}
	if len(r.Executions) < len(want) {
		return fmt.Errorf("%w: %d executions for %d roles", ErrExecutions, len(r.Executions), len(want))
	}
	if _, ok := majority(r.Executions[:len(want)], len(want)); !ok && r.Election.TieBreaker() != "" {
		want = append(want, r.Election.TieBreaker())
	}
	if len(r.Executions) != len(want) {
		return fmt.Errorf("%w: %d executions, the roles call for %d", ErrExecutions, len(r.Executions), len(want))
	}
	for i, x := range r.Executions {
		if x.NodeID != want[i] {
			return fmt.Errorf("%w: execution %d is by %q, the roles call for %q", ErrExecutions, i, x.NodeID, want[i])
		}
		if x.Err != "" {
			continue
		}
		if !x.Outcome.Valid() {
			return fmt.Errorf("%w: execution %d by %q ran without an outcome", ErrExecutions, i, x.NodeID)
		}
		if function.ResultHash(x.Outcome, x.ExitCode, x.Stdout) != x.Hash {
			return fmt.Errorf("%w: execution %d by %q: hash is not that of its result", ErrExecutions, i, x.NodeID)
		}
	}
	return nil
}

// checkVerdict: agreement, verification, result and conflict are what
// the executions decide.
func checkVerdict(r Record) error {
	v := Decide(r.Executions, len(r.Executions) == 3)
	accepted := v.Agreed || (r.Agreed && v.Unverifiable)
	switch {
	case r.Agreed != accepted:
		return fmt.Errorf("%w: recorded agreed=%t, the executions decide %t", ErrOutcome, r.Agreed, v.Agreed)
	case r.Verified != v.Verified:
		return fmt.Errorf("%w: recorded verified=%t, the executions decide %t", ErrOutcome, r.Verified, v.Verified)
	case !r.Agreed && (r.ResultHash != [32]byte{} || r.Outcome != 0 || r.ExitCode != 0 || len(r.Response) != 0):
		return fmt.Errorf("%w: a result without agreement", ErrOutcome)
	case r.Agreed && r.ResultHash != v.Hash:
		return fmt.Errorf("%w: result hash is not the agreed one", ErrOutcome)
	case r.Agreed && function.ResultHash(r.Outcome, r.ExitCode, r.Response) != r.ResultHash:
		return fmt.Errorf("%w: response is not the agreed result", ErrOutcome)
	case (!r.Agreed || len(r.Executions) == 3 || (r.Agreed && !v.Agreed)) && r.Conflict == "":
		return fmt.Errorf("%w: a conflict without its description", ErrOutcome)
	}
	return nil
}

// Verdict is what recorded executions decide (see Decide).
type Verdict struct {
	// Agreed: a majority agreed on Hash — executor and verifier, two of
	// three once the tie-breaker ran, or the executor alone when it was
	// the only one asked.
	Agreed bool
	// Hash is the agreed hash, or the one result's when Unverifiable.
	Hash [32]byte
	// Verified: at least two executions produced Hash.
	Verified bool
	// Unverifiable: no majority, but only because a single execution ran
	// and every other one asked failed (a group of two whose verifier
	// died). Whether its result is then accepted, unverified, is the
	// function's policy (function.Spec.Unverified).
	Unverifiable bool
}

// Decide computes the verdict of executions recorded in role order
// (executor, verifier, tie-breaker if tieBroken): the rule of
// election.Execute, applied to what a record holds.
func Decide(xs []Execution, tieBroken bool) Verdict {
	var v Verdict
	if len(xs) == 0 {
		return v
	}
	need := len(xs)
	if tieBroken {
		need = 2
	}
	if h, ok := majority(xs, need); ok {
		v.Agreed, v.Hash, v.Verified = true, h, count(xs, h) >= 2
		return v
	}
	for _, x := range xs {
		if x.Err == "" && ran(xs) == 1 {
			v.Unverifiable, v.Hash = true, x.Hash
		}
	}
	return v
}

func majority(xs []Execution, need int) ([32]byte, bool) {
	for _, x := range xs {
		if x.Err == "" && count(xs, x.Hash) >= need {
			return x.Hash, true
		}
	}
	return [32]byte{}, false
}

func count(xs []Execution, h [32]byte) int {
	c := 0
	for _, x := range xs {
		if x.Err == "" && x.Hash == h {
			c++
		}
	}
	return c
}

// ran counts the executions that ran.
func ran(xs []Execution) int {
	c := 0
	for _, x := range xs {
		if x.Err == "" {
			c++
		}
	}
	return c
}
