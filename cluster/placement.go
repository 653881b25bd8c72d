package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// probeMeta marks a short-lived gossip member that only reads the cluster
// view (to place a new node); members accept it and ignore it.
type probeMeta struct {
	Probe bool `json:"p"`
}

func isProbe(meta []byte) bool {
	var p probeMeta
	return json.Unmarshal(meta, &p) == nil && p.Probe
}

type probeDelegate struct{}

func (probeDelegate) NodeMeta(int) []byte                 { b, _ := json.Marshal(probeMeta{Probe: true}); return b }
func (probeDelegate) NotifyMsg([]byte)                    {}
func (probeDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (probeDelegate) LocalState(bool) []byte              { return nil }
func (probeDelegate) MergeRemoteState(buf []byte, _ bool) {}

// probeView is the probe's copy of the live members' metadata, taken in
// memberlist's event callbacks (which run under its lock): the *Node
// values Members returns are updated concurrently by memberlist, so
// reading their Meta afterwards is a data race.
type probeView struct {
	mu    sync.Mutex
	metas map[string][]byte
}

func (v *probeView) NotifyJoin(n *memberlist.Node)   { v.set(n) }
func (v *probeView) NotifyUpdate(n *memberlist.Node) { v.set(n) }
func (v *probeView) NotifyLeave(n *memberlist.Node) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.metas, n.Name)
}

func (v *probeView) set(n *memberlist.Node) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.metas[n.Name] = bytes.Clone(n.Meta)
}

// groupPopulations joins gossip briefly under a throwaway name and counts
// the live nodes of each group.
func groupPopulations(cfg Config) (map[int]int, error) {
	mc := memberlist.DefaultLocalConfig()
	mc.Name = "probe-" + NewNodeID().Short()
	host, _, err := splitHostPort(cfg.GossipBind)
	if err != nil {
		return nil, err
	}
	mc.BindAddr, mc.BindPort = host, 0
	if cfg.GossipAdvertise != "" {
		ah, _, err := splitHostPort(cfg.GossipAdvertise)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = ah
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("cluster: gossip bind address %s is unspecified; set a gossip advertise address", cfg.GossipBind)
	}
	if len(cfg.GossipKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, cfg.GossipKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrGossipKey, err)
		}
		mc.Keyring = kr
	}
	mc.Label = cfg.ClusterLabel
	mc.Delegate = probeDelegate{}
	view := &probeView{metas: map[string][]byte{}}
	mc.Events = view
	mc.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: placement probe: %w", err)
	}
	defer func() {
		_ = ml.Leave(200 * time.Millisecond)
		_ = ml.Shutdown()
	}()
	if _, err := ml.Join(cfg.Join); err != nil {
		return nil, fmt.Errorf("cluster: placement probe: no seed answered: %w", err)
	}
	pop := map[int]int{}
	view.mu.Lock()
	defer view.mu.Unlock()
	for name, m := range view.metas {
		if name == mc.Name || isProbe(m) {
			continue
		}
		var meta nodeMeta
		if json.Unmarshal(m, &meta) == nil && meta.Group >= 0 && meta.Group < cfg.Groups {
			pop[meta.Group]++
		}
	}
	return pop, nil
}

// balancedID draws random IDs until one falls in one of the least
// populated groups, so groups stay balanced while group = ID mod n holds.
func balancedID(groups int, pop map[int]int) NodeID {
	least := -1
	for g := 0; g < groups; g++ {
		if least < 0 || pop[g] < least {
			least = pop[g]
		}
	}
	for {
		id := NewNodeID()
		if pop[id.Group(groups)] == least {
			return id
		}
	}
}
