package election

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sort"
	"unicode"
	"unicode/utf8"
)

// Sizes and limits.
const (
	// Size is the width of keys, nonces, hashes and stakes in bytes
	// (the rule's 256 bits).
	Size = 32
	// MinSessionKeyBytes is the shortest session key DeriveKey accepts
	// (the same floor as qkd/session).
	MinSessionKeyBytes = 16
	// MaxCandidates bounds the candidates of one election.
	MaxCandidates = 1024
	// MaxIDLen bounds node IDs, key IDs and request IDs, in bytes.
	MaxIDLen = 255
)

// labelKey is the HKDF info prefix of the election key. It is the label of
// qkd/session.ElectionKey, so both derive the same key.
const labelKey = "qledger election key v1\x00"

// labelCommitment prefixes the key commitment's hash input.
const labelCommitment = "qledger election key commitment"

// DeriveKey returns the per-request election key
//
//	HKDF-SHA256(IKM = sessionKey, salt = none, info = "qledger election key v1\x00" || requestID)
//
// which is what qkd/session.ElectionKey(sessionKey, string(requestID))
// returns.
func DeriveKey(sessionKey, requestID []byte) ([Size]byte, error) {
	var out [Size]byte
	if len(sessionKey) < MinSessionKeyBytes {
		return out, fmt.Errorf("%w: %d bytes (at least %d)", ErrShortSessionKey, len(sessionKey), MinSessionKeyBytes)
	}
	if err := checkID("request ID", requestID); err != nil {
		return out, err
	}
	k, err := hkdf.Key(sha256.New, sessionKey, nil, labelKey+string(requestID), Size)
	if err != nil {
		return out, fmt.Errorf("election: hkdf: %w", err)
	}
	copy(out[:], k)
	return out, nil
}

// CommitKey returns SHA-256("qledger election key commitment" || key), the
// commitment a record carries instead of the key.
func CommitKey(key [Size]byte) [Size]byte {
	h := sha256.New()
	h.Write([]byte(labelCommitment))
	h.Write(key[:])
	var out [Size]byte
	h.Sum(out[:0])
	return out
}

// NewNonce draws a candidate's 32-byte nonce from crypto/rand.
func NewNonce() ([Size]byte, error) {
	var n [Size]byte
	if _, err := rand.Read(n[:]); err != nil {
		return n, fmt.Errorf("election: nonce: %w", err)
	}
	return n, nil
}

// HashNonce returns h = SHA-256(nonce), what a candidate commits to.
func HashNonce(nonce [Size]byte) [Size]byte { return sha256.Sum256(nonce[:]) }

// Stake returns h XOR key; read as a 256-bit big-endian unsigned integer,
// it is the candidate's stake.
func Stake(key, h [Size]byte) [Size]byte {
	var s [Size]byte
	xorInto(s[:], key[:], h[:])
	return s
}

// xorInto sets dst = a XOR b; all three have the same length.
func xorInto(dst, a, b []byte) {
	for i := range dst {
		dst[i] = a[i] ^ b[i]
	}
}

// before reports whether candidate (stakeA, idA) ranks before (stakeB,
// idB): the higher stake first, read as big-endian unsigned integers of
// equal width; on equal stakes the smaller node ID (bytewise) first.
func before(stakeA []byte, idA string, stakeB []byte, idB string) bool {
	if c := bytes.Compare(stakeA, stakeB); c != 0 {
		return c > 0
	}
	return idA < idB
}

// order returns the indices of the candidates in ranking order. The stakes
// may have any width, as long as it is the same for all; the production
// rule uses 32 bytes, the seed's worked example 2.
func order(ids []string, stakes [][]byte) []int {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return before(stakes[idx[a]], ids[idx[a]], stakes[idx[b]], ids[idx[b]])
	})
	return idx
}

// Commitment is what a candidate sends first: its node ID and h.
type Commitment struct {
	NodeID string
	H      [Size]byte
}

// Candidate is one participant of an election as a record holds it.
type Candidate struct {
	NodeID string
	// H is SHA-256(Nonce).
	H [Size]byte
	// Stake is H XOR the election key.
	Stake [Size]byte
	// Nonce is the candidate's revealed nonce (zero until revealed).
	Nonce [Size]byte
}

// Rank computes every candidate's stake under key and returns the
// candidates in ranking order: highest stake first (executor), then the
// verifier, then the tie-breaker; equal stakes are ordered by node ID. The
// result does not depend on the order of commits. Nonces are left zero.
func Rank(key [Size]byte, commits []Commitment) ([]Candidate, error) {
	if len(commits) == 0 {
		return nil, ErrNoCandidates
	}
	if len(commits) > MaxCandidates {
		return nil, fmt.Errorf("%w: %d (at most %d)", ErrTooManyCandidates, len(commits), MaxCandidates)
	}
	seen := make(map[string]bool, len(commits))
	ids := make([]string, len(commits))
	stakes := make([][]byte, len(commits))
	cands := make([]Candidate, len(commits))
	for i, c := range commits {
		if err := checkNodeID(c.NodeID); err != nil {
			return nil, err
		}
		if seen[c.NodeID] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateNode, c.NodeID)
		}
		seen[c.NodeID] = true
		cands[i] = Candidate{NodeID: c.NodeID, H: c.H, Stake: Stake(key, c.H)}
		ids[i], stakes[i] = c.NodeID, cands[i].Stake[:]
	}
	out := make([]Candidate, len(cands))
	for i, j := range order(ids, stakes) {
		out[i] = cands[j]
	}
	return out, nil
}

// Reveal is a candidate's nonce, sent after the commit phase.
type Reveal struct {
	NodeID string
	Nonce  [Size]byte
}

// Elect runs the whole rule when every nonce is at hand: h_i =
// SHA-256(nonce_i), stakes under key, ranking, and a Record for requestID
// that commits to key under keyID.
func Elect(key [Size]byte, keyID string, requestID []byte, reveals []Reveal) (Record, error) {
	if err := checkID("request ID", requestID); err != nil {
		return Record{}, err
	}
	if err := checkID("key ID", []byte(keyID)); err != nil {
		return Record{}, err
	}
	commits := make([]Commitment, len(reveals))
	nonces := make(map[string][Size]byte, len(reveals))
	for i, r := range reveals {
		commits[i] = Commitment{NodeID: r.NodeID, H: HashNonce(r.Nonce)}
		nonces[r.NodeID] = r.Nonce
	}
	cands, err := Rank(key, commits)
	if err != nil {
		return Record{}, err
	}
	for i := range cands {
		cands[i].Nonce = nonces[cands[i].NodeID]
	}
	return Record{
		RequestID:     bytes.Clone(requestID),
		KeyID:         keyID,
		KeyCommitment: CommitKey(key),
		Candidates:    cands,
	}, nil
}

func checkNodeID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("%w: %q (1..%d bytes of UTF-8)", ErrInvalidNodeID, id, MaxIDLen)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q holds a control character", ErrInvalidNodeID, id)
		}
	}
	return nil
}

func checkID(what string, id []byte) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s of %d bytes (1..%d)", ErrInvalidField, what, len(id), MaxIDLen)
	}
	return nil
}
