package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Role says what a node may do in its group.
type Role string

// Roles.
const (
	// RoleVoter may be promoted to a raft voter.
	RoleVoter Role = "voter"
	// RoleExecutor is ephemeral: it receives its group's chain as a raft
	// non-voter and never holds a vote.
	RoleExecutor Role = "executor"
)

// ParseRole accepts "voter" and "executor".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleVoter, RoleExecutor:
		return Role(s), nil
	case "":
		return RoleVoter, nil
	}
	return "", fmt.Errorf("%w: role %q (want voter or executor)", ErrBadRequest, s)
}

// nodeMeta is what a node tells the cluster about itself through gossip.
// Keys are short: memberlist caps metadata at 512 bytes.
type nodeMeta struct {
	ID      string `json:"id"`
	Group   int    `json:"g"`
	Role    Role   `json:"r"`
	Addr    string `json:"a"`
	API     string `json:"h,omitempty"`
	Version string `json:"v"`
	// Proto is the newest protocol version the node speaks (ProtocolVersion);
	// absent (0) from nodes that predate versioning, which speak 1.
	Proto int `json:"p,omitempty"`
	// Boot is set once the node has raft state (bootstrapped or added).
	Boot bool `json:"b,omitempty"`
	// Leader is set while the node leads its group.
	Leader bool `json:"l,omitempty"`
	// Corrupt, when set, is the node's chain alarm: what is wrong, at
	// height CorruptAt (see ChainAlarm).
	Corrupt   string `json:"c,omitempty"`
	CorruptAt uint64 `json:"ch,omitempty"`
	// Since is when this incarnation of the node started (Unix
	// nanoseconds): a removal asked by an earlier one is refused
	// (RemoveRequest.Since). Absent from nodes that predate it.
	Since int64 `json:"s,omitempty"`
}

// protocol is the newest protocol version the node speaks.
func (m nodeMeta) protocol() int { return max(1, m.Proto) }

// Member states as the cluster sees them.
const (
	stateAlive   = "alive"
	stateSuspect = "suspect"
	stateFailed  = "failed"
	stateLeft    = "left"
)

// member is one node as gossip shows it.
type member struct {
	meta   nodeMeta
	state  string
	since  time.Time // when state last changed
	gossip string    // gossip address
}

// gossip runs memberlist for a node and keeps the cluster view.
type gossip struct {
	n     *Node
	ml    *memberlist.Memberlist
	seeds []string

	metaMu sync.Mutex
	meta   nodeMeta
	certs  metaCerts // members' node certificates, with TLS

	mu      sync.RWMutex
	members map[string]*member
	// conflicts records IDs seen at two addresses at once.
	conflicts map[string]string
}

// Gossip errors.
var (
	ErrIDConflict = errors.New("cluster: node ID already alive at another address")
	ErrGossipKey  = errors.New("cluster: gossip key must be 16, 24 or 32 bytes")
)

func (n *Node) startGossip(hasState bool) error {
	cfg := n.cfg
	g := &gossip{n: n, seeds: cfg.Join, members: map[string]*member{}, conflicts: map[string]string{}}
	g.meta = nodeMeta{ID: n.info.ID, Group: n.group, Role: cfg.Role, Addr: n.info.Addr, API: n.info.APIAddr, Version: cfg.Version, Proto: ProtocolVersion, Boot: hasState, Since: n.started.UnixNano()}

	mc := memberlist.DefaultLANConfig()
	if cfg.GossipLoopback {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = 2 * time.Second
		mc.SuspicionMult = 2
	}
	mc.Name = n.info.ID
	host, port, err := splitHostPort(cfg.GossipBind)
	if err != nil {
		return fmt.Errorf("cluster: gossip bind %q: %w", cfg.GossipBind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.GossipAdvertise != "" {
		ah, ap, err := splitHostPort(cfg.GossipAdvertise)
		if err != nil {
			return fmt.Errorf("cluster: gossip advertise %q: %w", cfg.GossipAdvertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("cluster: gossip bind address %s is unspecified; set a gossip advertise address", cfg.GossipBind)
	}
	if len(cfg.GossipKey) > 0 {
		if err := memberlist.ValidateKey(cfg.GossipKey); err != nil {
			return fmt.Errorf("%w: %v", ErrGossipKey, err)
		}
		kr, err := memberlist.NewKeyring(nil, cfg.GossipKey)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrGossipKey, err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Label = cfg.ClusterLabel
	mc.DeadNodeReclaimTime = cfg.DeadServerGrace
	mc.Delegate = g
	mc.Events = g
	mc.Conflict = g
	mc.Alive = g
	mc.Logger = n.cfg.Logger.Named("gossip").StandardLogger(nil)
	if cfg.GossipBlocked != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger})
		if err != nil {
			return fmt.Errorf("cluster: gossip transport: %w", err)
		}
		if mc.BindPort == 0 {
			mc.BindPort = nt.GetAutoBindPort()
			if mc.AdvertisePort == 0 {
				mc.AdvertisePort = mc.BindPort
			}
		}
		self := net.JoinHostPort(host, strconv.Itoa(mc.BindPort))
		mc.Transport = &filterTransport{NodeAwareTransport: nt, blocked: func(to string) bool { return cfg.GossipBlocked(self, to) }}
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: start gossip: %w", err)
	}
	g.ml = ml
	n.gossip = g
	n.gossipAddr = net.JoinHostPort(ml.LocalNode().Addr.String(), strconv.Itoa(int(ml.LocalNode().Port)))
	return nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

// join contacts the seeds; it is not an error if none answers yet (the
// rejoin loop keeps trying).
func (g *gossip) join() (int, error) {
	if len(g.seeds) == 0 {
		return 0, nil
	}
	return g.ml.Join(g.seeds)
}

// loop re-joins the seeds periodically, so a healed partition merges
// again, and advertises leadership changes.
func (g *gossip) loop(stop <-chan struct{}) {
	rejoin := time.NewTicker(g.n.cfg.RejoinInterval)
	defer rejoin.Stop()
	lead := time.NewTicker(100 * time.Millisecond)
	defer lead.Stop()
	for {
		select {
		case <-stop:
			return
		case <-rejoin.C:
			if _, err := g.join(); err != nil {
				g.n.logger.Debug("rejoin failed", "seeds", g.seeds, "error", err)
			}
		case <-lead.C:
			g.setMeta(func(m *nodeMeta) {
				m.Leader = g.n.IsLeader()
				// Raft state, once there, stays: stop asking raft for it.
				m.Boot = m.Boot || g.n.hasRaftState()
			})
			g.n.metrics.setQueue(len(g.n.batch.in))
		}
	}
}

// setMeta changes this node's metadata and gossips it if it changed.
func (g *gossip) setMeta(f func(*nodeMeta)) {
	g.metaMu.Lock()
	old := g.meta
	f(&g.meta)
	changed := g.meta != old
	g.metaMu.Unlock()
	if changed && g.ml != nil {
		if err := g.ml.UpdateNode(time.Second); err != nil {
			g.n.logger.Debug("gossip metadata update", "error", err)
		}
	}
}

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte {
	g.metaMu.Lock()
	b, _ := json.Marshal(g.meta)
	g.metaMu.Unlock()
	b = g.sealMeta(b)
	if len(b) > limit {
		g.n.logger.Error("gossip metadata too large; other nodes will refuse this one", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

func (g *gossip) decode(node *memberlist.Node) (nodeMeta, error) {
	var m nodeMeta
	raw, err := g.openMeta(node.Meta, node.Name)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("unreadable metadata: %v", err)
	}
	id, err := ParseNodeID(m.ID)
	if err != nil || m.ID != node.Name {
		return m, fmt.Errorf("metadata ID %q does not match member name %q", m.ID, node.Name)
	}
	if want := id.Group(g.n.cfg.Groups); m.Group != want {
		return m, fmt.Errorf("node %s claims group %d, its ID gives %d (same number of groups everywhere?)", id.Short(), m.Group, want)
	}
	if _, err := ParseRole(string(m.Role)); err != nil || m.Addr == "" {
		return m, fmt.Errorf("node %s: bad role %q or no address", id.Short(), m.Role)
	}
	return m, nil
}

// NotifyAlive implements memberlist.AliveDelegate: a node whose
// metadata does not fit this cluster never becomes a member.
func (g *gossip) NotifyAlive(node *memberlist.Node) error {
	if node.Name == g.n.info.ID || isProbe(node.Meta) {
		return nil
	}
	if _, err := g.decode(node); err != nil {
		g.n.logger.Warn("refused gossip member", "name", node.Name, "error", err)
		return err
	}
	return nil
}

// NotifyConflict implements memberlist.ConflictDelegate.
func (g *gossip) NotifyConflict(existing, other *memberlist.Node) {
	g.n.logger.Error("node ID claimed at two addresses; the newcomer is refused", "id", existing.Name, "existing", existing.Address(), "other", other.Address())
	g.mu.Lock()
	g.conflicts[existing.Name] = other.Address()
	g.mu.Unlock()
}

func (g *gossip) update(node *memberlist.Node, state string) {
	if isProbe(node.Meta) {
		return
	}
	m, err := g.decode(node)
	if err != nil && node.Name != g.n.info.ID {
		return
	}
	if node.Name == g.n.info.ID {
		g.metaMu.Lock()
		m = g.meta
		g.metaMu.Unlock()
	}
	g.mu.Lock()
	cur, ok := g.members[m.ID]
	if !ok || cur.state != state {
		cur = &member{since: time.Now()}
		g.members[m.ID] = cur
	}
	cur.meta, cur.state, cur.gossip = m, state, node.Address()
	g.mu.Unlock()
	info := NodeInfo{ID: m.ID, Group: m.Group, Addr: m.Addr, APIAddr: m.API}
	if state == stateAlive {
		g.n.dir.merge([]dirEntry{{NodeInfo: info, Epoch: time.Now().UnixNano(), Role: m.Role, Leader: m.Leader}})
	} else if m.ID != g.n.info.ID {
		g.n.dir.markRemoved(m.ID)
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (g *gossip) NotifyJoin(node *memberlist.Node) { g.update(node, stateAlive) }

// NotifyUpdate implements memberlist.EventDelegate.
func (g *gossip) NotifyUpdate(node *memberlist.Node) { g.update(node, stateAlive) }

// NotifyLeave implements memberlist.EventDelegate: a graceful leave or a
// failure.
func (g *gossip) NotifyLeave(node *memberlist.Node) {
	state := stateFailed
	if node.State == memberlist.StateLeft {
		state = stateLeft
	}
	g.update(node, state)
}

// view returns a copy of every member known, with suspect members marked.
func (g *gossip) view() map[string]member {
	suspect := map[string]bool{}
	if g.ml != nil {
		for _, m := range g.ml.Members() {
			if m.State == memberlist.StateSuspect {
				suspect[m.Name] = true
			}
		}
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make(map[string]member, len(g.members))
	for id, m := range g.members {
		c := *m
		if c.state == stateAlive && suspect[id] {
			c.state = stateSuspect
		}
		out[id] = c
	}
	return out
}

// aliveElsewhere reports whether id is alive in gossip at a raft address
// other than addr.
func (g *gossip) aliveElsewhere(id, addr string) (string, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m, ok := g.members[id]
	if ok && m.state == stateAlive && m.meta.Addr != addr {
		return m.meta.Addr, true
	}
	return "", false
}

func (g *gossip) leave(timeout time.Duration) {
	if g.ml == nil {
		return
	}
	if err := g.ml.Leave(timeout); err != nil {
		g.n.logger.Warn("gossip leave", "error", err)
	}
	_ = g.ml.Shutdown()
}

// filterTransport drops outgoing gossip to blocked addresses (both
// packets and streams), which partitions nodes when both sides filter.
type filterTransport struct {
	memberlist.NodeAwareTransport
	blocked func(to string) bool
}

func (f *filterTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if f.blocked(addr) {
		return time.Now(), nil
	}
	return f.NodeAwareTransport.WriteTo(b, addr)
}

func (f *filterTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if f.blocked(a.Addr) {
		return time.Now(), nil
	}
	return f.NodeAwareTransport.WriteToAddress(b, a)
}

func (f *filterTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if f.blocked(addr) {
		return nil, fmt.Errorf("cluster: gossip to %s blocked", addr)
	}
	return f.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (f *filterTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if f.blocked(a.Addr) {
		return nil, fmt.Errorf("cluster: gossip to %s blocked", a.Addr)
	}
	return f.NodeAwareTransport.DialAddressTimeout(a, timeout)
}
