package election

import (
	"fmt"
	"sync"
	"time"
)

// NonceTTL is how long Nonces keeps a nonce that was committed but not
// revealed: far longer than any election's two phases.
const NonceTTL = time.Minute

// Nonces is a candidate's side of the protocol: for each request it draws
// a fresh nonce, answers with its commitment h = SHA-256(nonce) once, and
// reveals the nonce once. Unrevealed nonces are forgotten after NonceTTL.
// The zero value is ready to use; it is safe for concurrent use.
type Nonces struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string]nonceEntry
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
	for k, v := range n.m {
		if now.Sub(v.at) > NonceTTL {
			delete(n.m, k)
		}
	}
	if _, dup := n.m[string(requestID)]; dup {
		return [Size]byte{}, fmt.Errorf("%w: commitment for request %x", ErrDuplicate, requestID)
	}
	n.m[string(requestID)] = nonceEntry{nonce: nonce, at: now}
	return HashNonce(nonce), nil
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
