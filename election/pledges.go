package election

import (
	"sync"
	"time"
)

// PledgeUse is how long after it arrived a leader still uses a pledge:
// half of NonceTTL, so the candidate still holds its nonce when asked.
const PledgeUse = NonceTTL / 2

// MaxPledgesPerNode bounds the pledges a Pledges keeps for one candidate;
// more are dropped (the candidate forgets them after NonceTTL).
const MaxPledgesPerNode = 64

// Pledges is the leader's store of its candidates' pledges: commitments
// each candidate made before any request they will serve existed
// (Nonces.Pledge), handed over in answers to earlier elections. A leader
// whose Transport.Commit takes a candidate's commitment from here instead
// of asking the candidate saves the election's commit round trip; the
// candidate then reveals by the pledge (Nonces.RevealPledge).
//
// Fairness is that of a commitment made on request: the candidate fixed h
// before it could know anything about the election key (it did not even
// know the request). The record and Verify are unchanged. The leader
// chooses which pledge serves which election; Take hands them out oldest
// first, and a leader that chose otherwise could favour a candidate —
// as it could by leaving candidates out, which the record cannot show
// either (see DESIGN.md).
//
// The zero value is ready to use; it is safe for concurrent use.
type Pledges struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string][]pledge
}

type pledge struct {
	h  [Size]byte
	at time.Time
}

func (p *Pledges) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Add keeps h, a pledge nodeID just made, unless MaxPledgesPerNode of its
// pledges are kept already.
func (p *Pledges) Add(nodeID string, h [Size]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string][]pledge{}
	}
	if len(p.m[nodeID]) < MaxPledgesPerNode {
		p.m[nodeID] = append(p.m[nodeID], pledge{h: h, at: p.now()})
	}
}

// Take hands out nodeID's oldest pledge younger than PledgeUse, once;
// older ones are dropped. ok is false if none is left.
func (p *Pledges) Take(nodeID string) (h [Size]byte, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[nodeID]
	now := p.now()
	for len(l) > 0 && now.Sub(l[0].at) > PledgeUse {
		l = l[1:]
	}
	if len(l) > 0 {
		h, ok = l[0].h, true
		l = l[1:]
	}
	if len(l) == 0 {
		delete(p.m, nodeID)
	} else {
		p.m[nodeID] = l
	}
	return h, ok
}

// Forget drops every pledge of nodeID: it no longer holds them (it
// restarted, or refused one).
func (p *Pledges) Forget(nodeID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, nodeID)
}

// Len is how many pledges of nodeID are kept.
func (p *Pledges) Len(nodeID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m[nodeID])
}
