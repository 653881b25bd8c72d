package execrecord

import "errors"

// Decoding and encoding errors.
var (
	// ErrTruncated means the input ended before the record was complete.
	ErrTruncated = errors.New("execrecord: truncated input")
	// ErrTrailingBytes means bytes follow a complete record.
	ErrTrailingBytes = errors.New("execrecord: trailing bytes")
	// ErrUnknownVersion means the encoding version is not one this code
	// reads.
	ErrUnknownVersion = errors.New("execrecord: unknown encoding version")
	// ErrTooLarge means a field exceeds its limit.
	ErrTooLarge = errors.New("execrecord: value too large")
	// ErrMalformed means a field holds a value the format does not allow
	// (an unknown outcome or flag, a version 1 record that is not the JSON
	// it should be).
	ErrMalformed = errors.New("execrecord: malformed record")
)

// Errors of Check: what an execution record can get wrong.
var (
	// ErrElection means the election record does not verify
	// (election.Verify) or was held for another request.
	ErrElection = errors.New("execrecord: election record does not verify")
	// ErrInputHash means the input hash is not SHA-256 of the input.
	ErrInputHash = errors.New("execrecord: input hash does not match the input")
	// ErrRoles means the executor, verifier or tie-breaker is not the
	// one the election chose (or a tie-breaker is named that did not run).
	ErrRoles = errors.New("execrecord: roles do not follow from the election")
	// ErrExecutions means the executions are not those the roles call
	// for, or one carries a hash that is not that of its own result.
	ErrExecutions = errors.New("execrecord: executions do not follow from the roles")
	// ErrOutcome means agreement, verification, result or conflict is not
	// what the executions decide.
	ErrOutcome = errors.New("execrecord: outcome does not follow from the executions")
)
