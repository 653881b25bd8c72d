package function

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Outcome classifies how one call ended. Only OutcomeOK is a success; every
// other outcome is an error that the ledger records as such. The values
// are part of the result hash (ResultHash) and of the execution record.
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
		return nil, fmt.Errorf("function: invalid outcome %d", uint8(o))
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
	return fmt.Errorf("function: unknown outcome %q", b)
}

// labelResult prefixes the result hash. It keeps the name of the package
// the hash was defined in: it is part of every recorded result hash.
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
