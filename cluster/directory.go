package cluster

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// dirEntry is one node as the directory knows it. The entry with the
// higher Epoch wins a merge; a removal is an entry with Removed set.
type dirEntry struct {
	NodeInfo
	Epoch   int64 `json:"epoch"`
	Removed bool  `json:"removed,omitempty"`
	Role    Role  `json:"role,omitempty"`
	Leader  bool  `json:"leader,omitempty"`
}

func nodeEntries(nodes []NodeInfo) []dirEntry {
	out := make([]dirEntry, len(nodes))
	for i, n := range nodes {
		out[i] = dirEntry{NodeInfo: n, Epoch: time.Now().UnixNano()}
	}
	return out
}

// directory is this node's view of every node of the cluster, in every
// group: enough to route a request for any group to a node that serves it.
// Gossip feeds it (and a join answer seeds it); the raft configuration of
// each group stays the authority on membership.
type directory struct {
	self NodeInfo

	mu      sync.RWMutex
	entries map[string]dirEntry
}

func newDirectory(self NodeInfo) *directory {
	d := &directory{self: self, entries: map[string]dirEntry{}}
	d.entries[self.ID] = dirEntry{NodeInfo: self, Epoch: time.Now().UnixNano()}
	return d
}

// merge takes every entry newer than what it has.
func (d *directory) merge(in []dirEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range in {
		if e.ID == "" || e.ID == d.self.ID {
			continue
		}
		if cur, ok := d.entries[e.ID]; !ok || e.Epoch > cur.Epoch {
			d.entries[e.ID] = e
		}
	}
}

func (d *directory) markRemoved(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entries[id]
	e.ID, e.Removed, e.Epoch = id, true, time.Now().UnixNano()
	d.entries[id] = e
}

func (d *directory) listLocked(withRemoved bool) []dirEntry {
	out := make([]dirEntry, 0, len(d.entries))
	for _, e := range d.entries {
		if withRemoved || !e.Removed {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// all returns every entry, removals included, for exchange.
func (d *directory) all() []dirEntry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.listLocked(true)
}

func (d *directory) get(id string) (NodeInfo, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.entries[id]
	if !ok || e.Removed {
		return NodeInfo{}, false
	}
	return e.NodeInfo, true
}

// inGroup returns the live nodes of group g in random order.
func (d *directory) inGroup(g int) []NodeInfo {
	d.mu.RLock()
	var out []NodeInfo
	for _, e := range d.entries {
		if e.Group == g && !e.Removed {
			out = append(out, e.NodeInfo)
		}
	}
	d.mu.RUnlock()
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	// The group's leader, as gossip last said, first: one hop fewer.
	d.mu.RLock()
	sort.SliceStable(out, func(i, j int) bool { return d.entries[out[i].ID].Leader && !d.entries[out[j].ID].Leader })
	d.mu.RUnlock()
	return out
}
