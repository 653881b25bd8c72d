package election

import (
	"crypto/subtle"
	"fmt"
)

// Record is the verifiable outcome of one election: every candidate's node
// ID, h, stake and nonce in ranking order, the ID of the session key the
// election key came from, and a commitment to the election key.
//
// The record never holds the election key or the session key. Note that
// the rule itself makes the election key public once a record exists: it
// is stake_i XOR h_i for any i. What stays secret is the session key
// (HKDF is one-way), and before the commit phase closes the election key is
// known only to whoever holds the session key, which is what keeps
// candidates from choosing nonces with high stakes.
type Record struct {
	// RequestID is the request the election was held for (1..255 bytes).
	RequestID []byte
	// KeyID names the session key (e.g. its ETSI GS QKD 014 key_ID).
	KeyID string
	// KeyCommitment is CommitKey(election key).
	KeyCommitment [Size]byte
	// Candidates in ranking order: executor, verifier, tie-breaker, others.
	Candidates []Candidate
}

func (r Record) role(i int) string {
	if i < len(r.Candidates) {
		return r.Candidates[i].NodeID
	}
	return ""
}

// Executor is the node with the highest stake, "" if there is none.
func (r Record) Executor() string { return r.role(0) }

// Verifier is the node with the second-highest stake, "" if there is none.
func (r Record) Verifier() string { return r.role(1) }

// TieBreaker is the node with the third-highest stake, "" if there is
// none; it executes only when the executor and the verifier disagree.
func (r Record) TieBreaker() string { return r.role(2) }

// Verify checks a record without any key:
//   - 1..MaxCandidates candidates, valid and distinct node IDs, and a
//     request ID and key ID of 1..255 bytes;
//   - every h is SHA-256 of its nonce;
//   - stake XOR h is the same value K for every candidate (one key);
//   - the key commitment is CommitKey(K);
//   - the candidates are in ranking order.
//
// It reports the first failure with one of the named errors. A record that
// passes is internally consistent; that it belongs to a given session key
// needs VerifyWithSessionKey.
func Verify(r Record) error {
	_, err := verify(r)
	return err
}

// VerifyWithKey is Verify plus a check that the stakes were computed under
// the given election key (ErrKeyMismatch), which also pins the commitment.
func VerifyWithKey(r Record, key [Size]byte) error {
	k, err := verify(r)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(k[:], key[:]) != 1 {
		return ErrKeyMismatch
	}
	return nil
}

// VerifyWithSessionKey is VerifyWithKey under DeriveKey(sessionKey,
// r.RequestID): it shows that the election was run for this request under
// this session's key.
func VerifyWithSessionKey(r Record, sessionKey []byte) error {
	key, err := DeriveKey(sessionKey, r.RequestID)
	if err != nil {
		return err
	}
	return VerifyWithKey(r, key)
}

// verify checks r and returns the election key the stakes imply.
func verify(r Record) ([Size]byte, error) {
	var key [Size]byte
	if err := checkID("request ID", r.RequestID); err != nil {
		return key, err
	}
	if err := checkID("key ID", []byte(r.KeyID)); err != nil {
		return key, err
	}
	n := len(r.Candidates)
	if n == 0 {
		return key, ErrNoCandidates
	}
	if n > MaxCandidates {
		return key, fmt.Errorf("%w: %d (at most %d)", ErrTooManyCandidates, n, MaxCandidates)
	}
	seen := make(map[string]bool, n)
	for i, c := range r.Candidates {
		if err := checkNodeID(c.NodeID); err != nil {
			return key, fmt.Errorf("candidate %d: %w", i, err)
		}
		if seen[c.NodeID] {
			return key, fmt.Errorf("%w: %q", ErrDuplicateNode, c.NodeID)
		}
		seen[c.NodeID] = true
		if HashNonce(c.Nonce) != c.H {
			return key, fmt.Errorf("%w: candidate %d (%q)", ErrNonceMismatch, i, c.NodeID)
		}
	}
	key = Stake(r.Candidates[0].Stake, r.Candidates[0].H) // stake XOR h
	for i, c := range r.Candidates[1:] {
		if Stake(c.Stake, c.H) != key {
			return key, fmt.Errorf("%w: candidate %d (%q)", ErrStakeMismatch, i+1, c.NodeID)
		}
	}
	if CommitKey(key) != r.KeyCommitment {
		return key, ErrCommitmentMismatch
	}
	for i := 1; i < n; i++ {
		a, b := r.Candidates[i-1], r.Candidates[i]
		if !before(a.Stake[:], a.NodeID, b.Stake[:], b.NodeID) {
			return key, fmt.Errorf("%w: %q ranks before %q", ErrOrder, b.NodeID, a.NodeID)
		}
	}
	return key, nil
}
