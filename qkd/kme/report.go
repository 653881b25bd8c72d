package kme

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"qledger/qkd"
)

// RecentBlocks is how many QKD blocks a pool remembers (PoolStatus.Recent).
const RecentBlocks = 20

// BlockRecord is what a pool keeps of one QKD block run to fill it: the
// link's error rate and yield, never key material. Bit counts are bits.
type BlockRecord struct {
	// Time is when the block ended.
	Time time.Time `json:"time"`
	// Block is the link's block number.
	Block uint64 `json:"block"`
	// QBER is the quantum bit error rate estimated from the sample (0 for
	// a block aborted before estimation); Threshold is the rate above
	// which a block aborts.
	QBER      float64 `json:"qber"`
	Threshold float64 `json:"qber_threshold"`
	// SiftedBits survive basis sifting; Keys keys of KeyBits bits in all
	// left the block for the pool.
	SiftedBits int `json:"sifted_bits"`
	Keys       int `json:"keys"`
	KeyBits    int `json:"key_bits"`
	// Aborted blocks issue no key; AbortReason says why (a QBER over the
	// threshold means a noisy or eavesdropped channel).
	Aborted     bool   `json:"aborted"`
	AbortReason string `json:"abort_reason,omitempty"`
}

// PoolStatus describes one pool for operators and auditors: its fill
// level and the recent QKD blocks that filled it. Key counts are of keys
// of KeySizeBits.
type PoolStatus struct {
	Master      string `json:"master_sae"`
	Slave       string `json:"slave_sae"`
	KeySizeBits int    `json:"key_size_bits"`
	StoredKeys  int    `json:"stored_keys"`
	MaxKeys     int    `json:"max_keys"`
	// PendingKeys were delivered to the master and wait for the slave.
	PendingKeys int `json:"pending_keys"`
	// Recent are the last blocks (at most RecentBlocks), oldest first.
	Recent []BlockRecord `json:"recent_blocks"`
}

// recordBlock remembers one block's statistics, keeping the last
// RecentBlocks.
func (p *Pool) recordBlock(blk qkd.Block) {
	st := blk.Stats
	r := BlockRecord{Time: p.now(), Block: st.Block, QBER: st.QBER, Threshold: st.Threshold, SiftedBits: st.Sifted,
		Keys: len(blk.Keys), Aborted: st.Aborted, AbortReason: st.AbortReason}
	for _, k := range blk.Keys {
		r.KeyBits += 8 * len(k.Bytes)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent = append(p.recent, r)
	if len(p.recent) > RecentBlocks {
		p.recent = slices.Delete(p.recent, 0, len(p.recent)-RecentBlocks)
	}
}

// Status returns the pool's status.
func (p *Pool) Status() PoolStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked()
	return PoolStatus{Master: p.master, Slave: p.slave, KeySizeBits: p.keyBytes * 8, StoredKeys: len(p.reservoir) / p.keyBytes,
		MaxKeys: p.maxBytes / p.keyBytes, PendingKeys: len(p.pending), Recent: append([]BlockRecord{}, p.recent...)}
}

// Pools returns the status of every pool, ordered by master then slave.
func (s *Server) Pools() []PoolStatus {
	s.mu.RLock()
	pools := make([]*Pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.RUnlock()
	out := make([]PoolStatus, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.Status())
	}
	slices.SortFunc(out, func(a, b PoolStatus) int {
		return cmp.Or(strings.Compare(a.Master, b.Master), strings.Compare(a.Slave, b.Slave))
	})
	return out
}

// Pools returns the status of the pools this SAE is master or slave of
// (Server.Pools): for a gateway, every pool it accepts keys from.
func (l *Local) Pools() []PoolStatus {
	return slices.DeleteFunc(l.s.Pools(), func(p PoolStatus) bool { return p.Master != l.sae && p.Slave != l.sae })
}
