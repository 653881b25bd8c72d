package execute

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Outcome classifies how one call ended. Only OutcomeOK is a success; every
// other outcome is an error that the ledger records as such.
type Outcome uint8

// Outcomes. The zero value is not an outcome.
const (
	// OutcomeOK: _start returned, or the function called proc_exit(0),
	// within every limit.
	OutcomeOK Outcome = 1
	// OutcomeTrap: the module trapped, or failed to instantiate.
	OutcomeTrap Outcome = 2
	// OutcomeTimeout: the call ran past Spec.Timeout.
	OutcomeTimeout Outcome = 3
	// OutcomeMemoryLimit: the function asked for more than Spec.MemoryPages.
	OutcomeMemoryLimit Outcome = 4
	// OutcomeOutputLimit: the function wrote more than Spec.MaxOutputBytes
	// to stdout.
	OutcomeOutputLimit Outcome = 5
	// OutcomeBadExit: the function called proc_exit with a non-zero status.
	OutcomeBadExit Outcome = 6
)

var outcomeNames = [...]string{
	OutcomeOK:          "ok",
	OutcomeTrap:        "trap",
	OutcomeTimeout:     "timeout",
	OutcomeMemoryLimit: "memory_limit",
	OutcomeOutputLimit: "output_limit",
	OutcomeBadExit:     "bad_exit",
}

var outcomeErrs = [...]error{
	OutcomeTrap:        ErrTrap,
	OutcomeTimeout:     ErrTimeout,
	OutcomeMemoryLimit: ErrMemoryLimit,
	OutcomeOutputLimit: ErrOutputLimit,
	OutcomeBadExit:     ErrBadExit,
}

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool { return o >= OutcomeOK && o <= OutcomeBadExit }

// String returns the outcome's name ("ok", "trap", "timeout",
// "memory_limit", "output_limit", "bad_exit").
func (o Outcome) String() string {
	if !o.Valid() {
		return fmt.Sprintf("outcome(%d)", uint8(o))
	}
	return outcomeNames[o]
}

// MarshalText writes the outcome's name.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.Valid() {
		return nil, fmt.Errorf("execute: invalid outcome %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText reads an outcome's name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if n != "" && n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("execute: unknown outcome %q", b)
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
	Outcome  Outcome
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
func (r Result) OK() bool { return r.Outcome == OutcomeOK }

// Err returns nil for OutcomeOK and otherwise the outcome's named error
// (ErrTrap, ErrTimeout, ErrMemoryLimit, ErrOutputLimit, ErrBadExit) wrapped
// with the detail, for errors.Is.
func (r Result) Err() error {
	if r.Outcome == OutcomeOK {
		return nil
	}
	if !r.Outcome.Valid() {
		return fmt.Errorf("execute: invalid outcome %d", uint8(r.Outcome))
	}
	if r.Outcome == OutcomeBadExit {
		return fmt.Errorf("%w: status %d", ErrBadExit, r.ExitCode)
	}
	if r.Detail == "" {
		return outcomeErrs[r.Outcome]
	}
	return fmt.Errorf("%w: %s", outcomeErrs[r.Outcome], r.Detail)
}

const labelResult = "qledger/execute/result/v1"

// ResultHash is the canonical hash of a call's result:
//
//	SHA-256( "qledger/execute/result/v1"      (25 ASCII bytes)
//	      || u8  outcome
//	      || u32 exit code (big-endian)
//	      || u64 len(stdout) (big-endian)
//	      || stdout )
//
// The outcome is included because the non-OK outcomes carry no exit code
// and no stdout: without it a timeout would hash like an empty success.
func ResultHash(o Outcome, exitCode uint32, stdout []byte) [32]byte {
	h := sha256.New()
	var hdr [len(labelResult) + 1 + 4 + 8]byte
	n := copy(hdr[:], labelResult)
	hdr[n] = byte(o)
	binary.BigEndian.PutUint32(hdr[n+1:], exitCode)
	binary.BigEndian.PutUint64(hdr[n+5:], uint64(len(stdout)))
	h.Write(hdr[:])
	h.Write(stdout)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
