package election

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// CollectorConfig configures a Collector.
type CollectorConfig struct {
	// RequestID is the request the election is for (1..255 bytes).
	RequestID []byte
	// KeyID names the session key the election key came from.
	KeyID string
	// Key is the election key (DeriveKey). Only the collector's owner,
	// the group leader, holds it; candidates never see it.
	Key [Size]byte
	// Expected, if not empty, lists the only nodes allowed to take part
	// (the group's live members); AllCommitted fires when all of them
	// have committed. Empty means any node may commit.
	Expected []string
	// CommitDeadline closes the commit phase: a commitment is accepted
	// only strictly before it.
	CommitDeadline time.Time
	// RevealDeadline closes the reveal phase: a nonce is accepted only
	// strictly before it. It must be after CommitDeadline.
	RevealDeadline time.Time
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Collector gathers an election's inputs in two phases. First every
// candidate sends h = SHA-256(nonce) (Commit); when the commit phase closes
// (Seal, or the deadline) the ranking is fixed and can be acted on at once.
// Then candidates reveal their nonces (Reveal), each checked against its
// commitment, and Record assembles the verifiable record.
//
// A Collector is safe for concurrent use.
type Collector struct {
	cfg      CollectorConfig
	now      func() time.Time
	expected map[string]bool

	mu        sync.Mutex
	commits   []Commitment
	committed map[string][Size]byte
	allIn     chan struct{}
	ranking   []Candidate // set by Seal
	revealed  map[string][Size]byte
}

// NewCollector checks cfg and returns an open Collector.
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if err := checkID("request ID", cfg.RequestID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := checkID("key ID", []byte(cfg.KeyID)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.CommitDeadline.IsZero() || !cfg.RevealDeadline.After(cfg.CommitDeadline) {
		return nil, fmt.Errorf("%w: the reveal deadline must follow a non-zero commit deadline", ErrConfig)
	}
	if len(cfg.Expected) > MaxCandidates {
		return nil, fmt.Errorf("%w: %w: %d expected nodes", ErrConfig, ErrTooManyCandidates, len(cfg.Expected))
	}
	c := &Collector{
		cfg:       cfg,
		now:       cfg.Now,
		committed: map[string][Size]byte{},
		revealed:  map[string][Size]byte{},
		allIn:     make(chan struct{}),
	}
	c.cfg.RequestID = bytes.Clone(cfg.RequestID)
	if c.now == nil {
		c.now = time.Now
	}
	if len(cfg.Expected) > 0 {
		c.expected = make(map[string]bool, len(cfg.Expected))
		for _, id := range cfg.Expected {
			if err := checkNodeID(id); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrConfig, err)
			}
			if c.expected[id] {
				return nil, fmt.Errorf("%w: %w: %q", ErrConfig, ErrDuplicateNode, id)
			}
			c.expected[id] = true
		}
	}
	return c, nil
}

// Commit records a candidate's h. It fails with ErrLate once the commit
// phase is closed, ErrDuplicate if the node already committed,
// ErrUnexpectedNode for a node outside Expected, ErrInvalidNodeID or
// ErrTooManyCandidates.
func (c *Collector) Commit(nodeID string, h [Size]byte) error {
	if err := checkNodeID(nodeID); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ranking != nil || !c.now().Before(c.cfg.CommitDeadline) {
		return fmt.Errorf("%w: commitment from %q", ErrLate, nodeID)
	}
	if c.expected != nil && !c.expected[nodeID] {
		return fmt.Errorf("%w: %q", ErrUnexpectedNode, nodeID)
	}
	if _, ok := c.committed[nodeID]; ok {
		return fmt.Errorf("%w: commitment from %q", ErrDuplicate, nodeID)
	}
	if len(c.commits) >= MaxCandidates {
		return ErrTooManyCandidates
	}
	c.committed[nodeID] = h
	c.commits = append(c.commits, Commitment{NodeID: nodeID, H: h})
	if c.expected != nil && len(c.commits) == len(c.expected) {
		close(c.allIn)
	}
	return nil
}

// AllCommitted is closed when every expected node has committed. With no
// Expected list it is never closed; wait for the deadline instead.
func (c *Collector) AllCommitted() <-chan struct{} { return c.allIn }

// Seal closes the commit phase (if the deadline has not already) and
// returns the ranking of the commitments received, nonces still zero.
// Later calls return the same ranking. It fails with ErrNoCandidates if no
// commitment arrived.
func (c *Collector) Seal() ([]Candidate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ranking == nil {
		r, err := Rank(c.cfg.Key, c.commits)
		if err != nil {
			return nil, err
		}
		c.ranking = r
	}
	return append([]Candidate(nil), c.ranking...), nil
}

// Reveal records a candidate's nonce. The commit phase must be sealed
// (ErrNotSealed); it fails with ErrLate after the reveal deadline,
// ErrUnknownCandidate for a node without a commitment in the ranking,
// ErrDuplicate for a second nonce, and ErrNonceMismatch if SHA-256(nonce)
// is not the committed h (the node may then try again before the
// deadline).
func (c *Collector) Reveal(nodeID string, nonce [Size]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ranking == nil {
		return ErrNotSealed
	}
	if !c.now().Before(c.cfg.RevealDeadline) {
		return fmt.Errorf("%w: nonce from %q", ErrLate, nodeID)
	}
	h, ok := c.committed[nodeID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCandidate, nodeID)
	}
	if _, ok := c.revealed[nodeID]; ok {
		return fmt.Errorf("%w: nonce from %q", ErrDuplicate, nodeID)
	}
	if HashNonce(nonce) != h {
		return fmt.Errorf("%w: from %q", ErrNonceMismatch, nodeID)
	}
	c.revealed[nodeID] = nonce
	return nil
}

// Record returns the election record of the candidates that revealed their
// nonces, in ranking order, and the node IDs (in ranking order) of those
// that committed but have not revealed. Leaving a candidate out keeps the
// others' relative order, so roles move up: if the executor never reveals,
// the record names the next candidate as executor, and it is for the
// caller to treat that execution accordingly. Record fails with
// ErrNotSealed before Seal and ErrNoCandidates if nobody revealed. It can
// be called again as more nonces arrive.
func (c *Collector) Record() (Record, []string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ranking == nil {
		return Record{}, nil, ErrNotSealed
	}
	var cands []Candidate
	var missing []string
	for _, cand := range c.ranking {
		nonce, ok := c.revealed[cand.NodeID]
		if !ok {
			missing = append(missing, cand.NodeID)
			continue
		}
		cand.Nonce = nonce
		cands = append(cands, cand)
	}
	if len(cands) == 0 {
		return Record{}, missing, ErrNoCandidates
	}
	return Record{
		RequestID:     bytes.Clone(c.cfg.RequestID),
		KeyID:         c.cfg.KeyID,
		KeyCommitment: CommitKey(c.cfg.Key),
		Candidates:    cands,
	}, missing, nil
}
