package execute

import (
	"fmt"
	"time"

	"qledger/function"
)

var outcomeErrs = [...]error{
	function.OutcomeTrap:        ErrTrap,
	function.OutcomeTimeout:     ErrTimeout,
	function.OutcomeMemoryLimit: ErrMemoryLimit,
	function.OutcomeOutputLimit: ErrOutputLimit,
	function.OutcomeBadExit:     ErrBadExit,
}

// Result is what one call produced.
//
// ExitCode and Stdout are kept only for OutcomeOK and OutcomeBadExit, the
// outcomes in which the function ran to its own end; for the others they
// are zero and nil, because what a function wrote before a timeout depends
// on machine speed. Hash covers Outcome, ExitCode and Stdout (see
// ResultHash), so two executions of the same request agree on Hash exactly
// when they agree on those three. Stderr, Detail and Duration are
// diagnostics and are not hashed; Stderr is reproducible too, except after
// a timeout (it stops being recorded at a memory or output limit hit).
type Result struct {
	Outcome  function.Outcome
	ExitCode uint32
	Stdout   []byte
	// Stderr is the first Spec.MaxStderrBytes bytes written to stderr.
	Stderr []byte
	// StderrTruncated says more was written to stderr than kept.
	StderrTruncated bool
	// Detail explains a non-OK outcome (trap message, refused size, ...).
	Detail string
	// Duration is the wall time of instantiation plus execution.
	Duration time.Duration
	// Hash is ResultHash(Outcome, ExitCode, Stdout).
	Hash [32]byte
}

// OK reports whether the call succeeded.
func (r Result) OK() bool { return r.Outcome == function.OutcomeOK }

// Err returns nil for OutcomeOK and otherwise the outcome's named error
// (ErrTrap, ErrTimeout, ErrMemoryLimit, ErrOutputLimit, ErrBadExit) wrapped
// with the detail, for errors.Is.
func (r Result) Err() error {
	if r.Outcome == function.OutcomeOK {
		return nil
	}
	if !r.Outcome.Valid() {
		return fmt.Errorf("execute: invalid outcome %d", uint8(r.Outcome))
	}
	if r.Outcome == function.OutcomeBadExit {
		return fmt.Errorf("%w: status %d", ErrBadExit, r.ExitCode)
	}
	if r.Detail == "" {
		return outcomeErrs[r.Outcome]
	}
	return fmt.Errorf("%w: %s", outcomeErrs[r.Outcome], r.Detail)
}
