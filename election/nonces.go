package election

import (
	"fmt"
	"sync"
	"time"
)

// NonceTTL is how long Nonces keeps a nonce that was committed but not
// revealed: far longer than any election's two phases.
const NonceTTL = time.Minute

// MaxPledges bounds the pledges a Nonces keeps unrevealed at once.
const MaxPledges = 4096

// Nonces is a candidate's side of the protocol: for each request it draws
// a fresh nonce, answers with its commitment h = SHA-256(nonce) once, and
// reveals the nonce once. It also pledges nonces tied to no request yet
// (Pledge), each revealed once by its h (RevealPledge). Unrevealed nonces
// and pledges are forgotten after NonceTTL. The zero value is ready to
// use; it is safe for concurrent use.
type Nonces struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	m       map[string]nonceEntry
	pledged map[[Size]byte]nonceEntry
	swept   time.Time
}

type nonceEntry struct {
	nonce [Size]byte
	at    time.Time
}

func (n *Nonces) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// sweep forgets what is older than NonceTTL, at most a few times per
// NonceTTL. n.mu is held.
func (n *Nonces) sweep(now time.Time) {
	if now.Sub(n.swept) < NonceTTL/8 {
		return
	}
	n.swept = now
	for k, v := range n.m {
		if now.Sub(v.at) > NonceTTL {
			delete(n.m, k)
		}
	}
	for k, v := range n.pledged {
		if now.Sub(v.at) > NonceTTL {
			delete(n.pledged, k)
		}
	}
}

// Commit draws a nonce for requestID and returns its h. It fails with
// ErrDuplicate if this node already committed for requestID (a request is
// elected once), ErrInvalidField for an empty or oversize request ID.
func (n *Nonces) Commit(requestID []byte) ([Size]byte, error) {
	if err := checkID("request ID", requestID); err != nil {
		return [Size]byte{}, err
	}
	nonce, err := NewNonce()
	if err != nil {
		return [Size]byte{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if n.m == nil {
		n.m = map[string]nonceEntry{}
	}
	n.sweep(now)
	if v, dup := n.m[string(requestID)]; dup && now.Sub(v.at) <= NonceTTL {
		return [Size]byte{}, fmt.Errorf("%w: commitment for request %x", ErrDuplicate, requestID)
	}
	n.m[string(requestID)] = nonceEntry{nonce: nonce, at: now}
	return HashNonce(nonce), nil
}

// Pledge draws a nonce tied to no request and returns its h: a commitment
// made before any request it may serve exists, so before anything about
// that request's election key could be known (see Pledges). It fails with
// ErrTooManyPledges while MaxPledges pledges are unrevealed.
func (n *Nonces) Pledge() ([Size]byte, error) {
	nonce, err := NewNonce()
	if err != nil {
		return [Size]byte{}, err
	}
	h := HashNonce(nonce)
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if n.pledged == nil {
		n.pledged = map[[Size]byte]nonceEntry{}
	}
	n.sweep(now)
	if len(n.pledged) >= MaxPledges {
		return [Size]byte{}, ErrTooManyPledges
	}
	n.pledged[h] = nonceEntry{nonce: nonce, at: now}
	return h, nil
}

// RevealPledge returns, once, the nonce behind the pledge h. It fails
// with ErrNoCommitment if there is none (never pledged, already revealed,
// or expired).
func (n *Nonces) RevealPledge(h [Size]byte) ([Size]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.pledged[h]
	delete(n.pledged, h)
	if !ok || n.now().Sub(v.at) > NonceTTL {
		return [Size]byte{}, fmt.Errorf("%w: pledge %x", ErrNoCommitment, h[:6])
	}
	return v.nonce, nil
}

// Reveal returns, once, the nonce committed for requestID. It fails with
// ErrNoCommitment if there is none (never committed, already revealed, or
// expired).
func (n *Nonces) Reveal(requestID []byte) ([Size]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.m[string(requestID)]
	if !ok || n.now().Sub(v.at) > NonceTTL {
		delete(n.m, string(requestID))
		return [Size]byte{}, fmt.Errorf("%w: request %x", ErrNoCommitment, requestID)
	}
	delete(n.m, string(requestID))
	return v.nonce, nil
}
