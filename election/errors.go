package election

import "errors"

// Errors of the rule and of record verification.
var (
	// ErrShortSessionKey means the session key has fewer than
	// MinSessionKeyBytes bytes.
	ErrShortSessionKey = errors.New("election: session key too short")
	// ErrNoCandidates means an election or record has no candidate.
	ErrNoCandidates = errors.New("election: no candidates")
	// ErrTooManyCandidates means more than MaxCandidates took part.
	ErrTooManyCandidates = errors.New("election: too many candidates")
	// ErrInvalidNodeID means a node ID is empty, too long, not UTF-8 or
	// holds control characters.
	ErrInvalidNodeID = errors.New("election: invalid node ID")
	// ErrInvalidField means a record field (request ID, key ID) is empty
	// or too long.
	ErrInvalidField = errors.New("election: invalid field")
	// ErrDuplicateNode means a node ID appears twice.
	ErrDuplicateNode = errors.New("election: duplicate node ID")
	// ErrNonceMismatch means SHA-256(nonce) is not the candidate's h.
	ErrNonceMismatch = errors.New("election: nonce does not match its hash")
	// ErrStakeMismatch means stake XOR h differs between candidates, so
	// the stakes were not all computed under one key.
	ErrStakeMismatch = errors.New("election: stakes not computed under one key")
	// ErrCommitmentMismatch means the key commitment does not commit to
	// the key the stakes were computed under.
	ErrCommitmentMismatch = errors.New("election: key commitment mismatch")
	// ErrKeyMismatch means the stakes were computed under another key
	// than the one given to VerifyWithKey or VerifyWithSessionKey.
	ErrKeyMismatch = errors.New("election: stakes not computed under the given key")
	// ErrOrder means the candidates are not in ranking order.
	ErrOrder = errors.New("election: candidates out of order")
)

// Decoding errors.
var (
	// ErrTruncated means the input ended before the value was complete.
	ErrTruncated = errors.New("election: truncated input")
	// ErrTrailingBytes means bytes follow a complete value.
	ErrTrailingBytes = errors.New("election: trailing bytes")
	// ErrUnknownVersion means the encoding version is not one this code reads.
	ErrUnknownVersion = errors.New("election: unknown encoding version")
	// ErrTooLarge means a field exceeds its limit.
	ErrTooLarge = errors.New("election: value too large")
	// ErrMalformed means a JSON record is not well formed.
	ErrMalformed = errors.New("election: malformed record")
)

// Collector errors.
var (
	// ErrLate means a commitment or nonce arrived after its phase closed.
	ErrLate = errors.New("election: too late")
	// ErrDuplicate means a node already sent a commitment (or a nonce).
	ErrDuplicate = errors.New("election: duplicate entry")
	// ErrUnexpectedNode means a node outside the collector's expected set
	// tried to take part.
	ErrUnexpectedNode = errors.New("election: unexpected node")
	// ErrUnknownCandidate means a nonce came from a node that sent no
	// commitment before the commit phase closed.
	ErrUnknownCandidate = errors.New("election: no commitment from this node")
	// ErrNotSealed means the commit phase is still open.
	ErrNotSealed = errors.New("election: commit phase still open")
	// ErrNoCommitment means a candidate was asked to reveal a nonce it
	// never committed to (or already revealed, or forgot after NonceTTL).
	ErrNoCommitment = errors.New("election: no commitment for this request")
	// ErrTooManyPledges means a candidate holds MaxPledges unrevealed
	// pledges and makes no more until some are revealed or expire.
	ErrTooManyPledges = errors.New("election: too many unrevealed pledges")
	// ErrConfig means a CollectorConfig or RunConfig field is invalid.
	ErrConfig = errors.New("election: invalid collector config")
)
