package kme

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"qledger/qkd"
)

// Pool holds the key material shared by one ordered (master, slave) SAE
// pair: a reservoir of undelivered bytes and the keys already delivered to
// the master that wait for the slave. Safe for concurrent use.
//
// The reservoir is one byte stream. Keys added with AddKeys keep the ID the
// QKD link gave them: a request whose key size equals such a key's size and
// that starts where the key starts hands it out whole under that ID, so
// both ends and the link's own records name it alike. Material added with
// Add, and keys cut from or across link keys (another size, or after an
// unaligned request), get a fresh random ID.
type Pool struct {
	master, slave string
	maxBytes      int
	keyBytes      int
	ttl           time.Duration
	now           func() time.Time

	mu         sync.Mutex
	reservoir  []byte
	off        int // stream offset of reservoir[0]
	spans      []keySpan
	spanHead   int                    // spans[spanHead:] start at or after off
	spanIDs    map[uuid.UUID]struct{} // IDs of spans[spanHead:]
	pending    map[uuid.UUID]pendingKey
	order      []pendingRef // pending keys in delivery order, for expiry
	head       int
	maxPending int
	expired    int
	recent     []BlockRecord // the last RecentBlocks blocks, oldest first
}

// keySpan is a link key stored whole in the reservoir, at stream offsets
// [start, end).
type keySpan struct {
	id         uuid.UUID
	start, end int
}

type pendingRef struct {
	id      uuid.UUID
	created time.Time
}

type pendingKey struct {
	key     []byte
	created time.Time
}

func newPool(master, slave string, cfg Config) *Pool {
	return &Pool{master: master, slave: slave, maxBytes: cfg.MaxKeyCount * cfg.KeySize / 8,
		keyBytes: cfg.KeySize / 8, ttl: cfg.PendingTTL, now: cfg.now, maxPending: cfg.MaxKeyCount,
		pending: make(map[uuid.UUID]pendingKey), spanIDs: make(map[uuid.UUID]struct{})}
}

// Master returns the master SAE ID.
func (p *Pool) Master() string { return p.master }

// Slave returns the slave SAE ID.
func (p *Pool) Slave() string { return p.slave }

// Add appends key material without IDs (both ends of the QKD link hold
// identical copies) and returns how many bytes were accepted before the
// pool was full.
func (p *Pool) Add(material []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addLocked(material)
}

func (p *Pool) addLocked(material []byte) int {
	n := min(len(material), p.maxBytes-len(p.reservoir))
	if n <= 0 {
		return 0
	}
	p.reservoir = append(p.reservoir, material[:n]...)
	return n
}

// AddKeys adds the keys produced by a qkd.Link, keeping their IDs, and
// returns how many bytes were accepted. A key that does not fit whole is
// kept as material without its ID; a key whose ID is already stored or
// waiting for the slave is refused, as it would name two keys.
func (p *Pool) AddKeys(keys []qkd.Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked()
	n := 0
	for _, k := range keys {
		if k.ID == uuid.Nil {
			n += p.addLocked(k.Bytes)
			continue
		}
		_, stored := p.spanIDs[k.ID]
		_, waiting := p.pending[k.ID]
		if stored || waiting || len(k.Bytes) == 0 {
			continue
		}
		start := p.off + len(p.reservoir)
		added := p.addLocked(k.Bytes)
		n += added
		if added == len(k.Bytes) {
			p.spans = append(p.spans, keySpan{id: k.ID, start: start, end: start + added})
			p.spanIDs[k.ID] = struct{}{}
		}
	}
	return n
}

// Stored returns the number of default-size keys available to the master.
func (p *Pool) Stored() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reservoir) / p.keyBytes
}

// Pending returns the number of keys delivered to the master and not yet
// fetched by the slave.
func (p *Pool) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked()
	return len(p.pending)
}

// take cuts number keys of size bits for the master and keeps a copy for
// the slave. It takes nothing unless all fit.
func (p *Pool) take(number, sizeBits int) ([]Key, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked()
	sz := sizeBits / 8
	if len(p.pending)+number > p.maxPending {
		return nil, fmt.Errorf("%w: %d keys still wait for %s", ErrInsufficient, len(p.pending), p.slave)
	}
	if number*sz > len(p.reservoir) {
		return nil, fmt.Errorf("%w: %d keys of %d bits requested, %d bytes stored", ErrInsufficient, number, sizeBits, len(p.reservoir))
	}
	ids, err := p.keyIDsLocked(number, sz)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, number)
	now := p.now()
	for i, id := range ids {
		material := append([]byte(nil), p.reservoir[i*sz:(i+1)*sz]...)
		keys[i] = Key{KeyID: id.String(), Key: material}
		p.pending[id] = pendingKey{key: append([]byte(nil), material...), created: now}
		p.order = append(p.order, pendingRef{id: id, created: now})
	}
	clear(p.reservoir[:number*sz])
	p.reservoir = p.reservoir[number*sz:]
	p.off += number * sz
	p.dropSpansLocked()
	return keys, nil
}

// keyIDsLocked names the next number keys of sz bytes without changing
// the pool: the link's ID for a key that is exactly one stored link key, a
// fresh random ID otherwise.
func (p *Pool) keyIDsLocked(number, sz int) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, number)
	j := p.spanHead
	for i := range ids {
		start := p.off + i*sz
		for j < len(p.spans) && p.spans[j].start < start {
			j++
		}
		if j < len(p.spans) && p.spans[j].start == start && p.spans[j].end == start+sz {
			if _, dup := p.pending[p.spans[j].id]; !dup {
				ids[i] = p.spans[j].id
				j++
				continue
			}
		}
		id, err := uuid.NewRandom()
		if err != nil {
			return nil, fmt.Errorf("qkd/kme: key ID: %w", err)
		}
		ids[i] = id
	}
	return ids, nil
}

// dropSpansLocked forgets the link keys that start before the reservoir:
// handed out whole, or cut by a request of another size.
func (p *Pool) dropSpansLocked() {
	for p.spanHead < len(p.spans) && p.spans[p.spanHead].start < p.off {
		delete(p.spanIDs, p.spans[p.spanHead].id)
		p.spanHead++
	}
	if p.spanHead > 1024 && p.spanHead > len(p.spans)/2 {
		p.spans = append(p.spans[:0], p.spans[p.spanHead:]...)
		p.spanHead = 0
	}
}

// claim hands the slave its keys and erases them. It is all or nothing.
func (p *Pool) claim(ids []uuid.UUID) ([]Key, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked()
	var missing []string
	for _, id := range ids {
		if _, ok := p.pending[id]; !ok {
			missing = append(missing, id.String())
		}
	}
	if len(missing) > 0 {
		return nil, &notFoundError{ids: missing}
	}
	keys := make([]Key, len(ids))
	for i, id := range ids {
		pk := p.pending[id]
		keys[i] = Key{KeyID: id.String(), Key: append([]byte(nil), pk.key...)}
		clear(pk.key)
		delete(p.pending, id)
	}
	return keys, nil
}

type notFoundError struct{ ids []string }

func (e *notFoundError) Error() string { return fmt.Sprintf("%v: %v", ErrKeyNotFound, e.ids) }
func (e *notFoundError) Unwrap() error { return ErrKeyNotFound }

// expireLocked erases pending keys older than the TTL, oldest first, and
// drops bookkeeping of keys already fetched. Amortized O(1) per key.
func (p *Pool) expireLocked() {
	var cut time.Time
	if p.ttl > 0 {
		cut = p.now().Add(-p.ttl)
	}
	for p.head < len(p.order) {
		ref := p.order[p.head]
		pk, live := p.pending[ref.id]
		if live && (p.ttl <= 0 || !pk.created.Before(cut)) {
			break
		}
		if live {
			clear(pk.key)
			delete(p.pending, ref.id)
			p.expired++
		}
		p.head++
	}
	if p.head > 1024 && p.head > len(p.order)/2 {
		p.order = append(p.order[:0], p.order[p.head:]...)
		p.head = 0
	}
}

// Fill runs blocks on link until the pool stores at least target
// default-size keys. It gives up after maxAborts consecutive aborted blocks
// (returning the last abort, which names the reason: QBER above threshold
// means the channel is too noisy or eavesdropped) or when ctx ends.
func (p *Pool) Fill(ctx context.Context, link *qkd.Link, target, maxAborts int) error {
	aborts := 0
	for p.Stored() < target {
		if err := ctx.Err(); err != nil {
			return err
		}
		blk, err := link.Next(ctx)
		if ctx.Err() == nil {
			p.recordBlock(blk)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			aborts++
			if aborts >= maxAborts {
				return fmt.Errorf("qkd/kme: fill %s->%s: %d blocks aborted in a row: %w", p.master, p.slave, aborts, err)
			}
			continue
		}
		aborts = 0
		if p.AddKeys(blk.Keys) == 0 && len(blk.Keys) > 0 {
			return nil // full
		}
	}
	return nil
}
