package cluster

import "github.com/hashicorp/raft"

// configuredAt is the raft server ID configured at addr in the node's
// group, or "" if none. Raft dials only configured servers, so with TLS a
// server answering at a configured address must present that ID.
func (n *Node) configuredAt(addr string) string {
	if n.raft == nil {
		return ""
	}
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return ""
	}
	for _, s := range cf.Configuration().Servers {
		if s.Address == raft.ServerAddress(addr) {
			return string(s.ID)
		}
	}
	return ""
}

// expectedAt is the node believed to be at addr: an alive gossip member
// first (the freshest view), then the group's raft configuration, then
// the directory; "" if none is known.
func (n *Node) expectedAt(addr string) string {
	if n.gossip != nil {
		for id, m := range n.gossip.view() {
			if m.meta.Addr == addr && m.state == stateAlive {
				return id
			}
		}
	}
	if id := n.configuredAt(addr); id != "" {
		return id
	}
	if n.dir != nil {
		for _, e := range n.dir.all() {
			if e.Addr == addr && !e.Removed {
				return e.ID
			}
		}
	}
	return ""
}
