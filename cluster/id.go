package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// NodeID is a node's random 256-bit identifier.
type NodeID [32]byte

// String is the 64-digit lowercase hex form, which is also the node's raft
// server ID.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 12 hex digits, for people.
func (id NodeID) Short() string { return id.String()[:12] }

// ParseNodeID parses the 64-digit hex form.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: node ID must be 64 hex digits, got %q", ErrBadRequest, s)
	}
	copy(id[:], b)
	return id, nil
}

// NewNodeID draws a random ID.
func NewNodeID() NodeID {
	var id NodeID
	rand.Read(id[:])
	return id
}

// Group is the node group of id in a cluster of n groups: the ID read as a
// big-endian unsigned integer, mod n.
func (id NodeID) Group(n int) int {
	if n <= 1 {
		return 0
	}
	var m big.Int
	m.SetBytes(id[:])
	return int(m.Mod(&m, big.NewInt(int64(n))).Int64())
}

// NewNodeIDInGroup draws random IDs until one falls in group g of n.
func NewNodeIDInGroup(g, n int) NodeID {
	for {
		if id := NewNodeID(); id.Group(n) == g {
			return id
		}
	}
}

const idFile = "node-id"

// loadOrCreateID returns the ID kept in dir, or keeps want (or a fresh ID
// from draw, random if draw is nil) there. A configured ID that differs
// from the kept one is an error: a data directory belongs to one node.
func loadOrCreateID(dir, want string, draw func() NodeID) (NodeID, error) {
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, err := ParseNodeID(strings.TrimSpace(string(b)))
		if err != nil {
			return id, fmt.Errorf("cluster: %s: %w", path, err)
		}
		if want != "" && want != id.String() {
			return id, fmt.Errorf("cluster: data directory belongs to node %s, not %s", id, want)
		}
		return id, nil
	case !os.IsNotExist(err):
		return NodeID{}, fmt.Errorf("cluster: read node ID: %w", err)
	}
	id := NewNodeID()
	if draw != nil {
		id = draw()
	}
	if want != "" {
		if id, err = ParseNodeID(want); err != nil {
			return id, err
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id.String()+"\n"), 0o600); err != nil {
		return id, fmt.Errorf("cluster: keep node ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return id, fmt.Errorf("cluster: keep node ID: %w", err)
	}
	return id, nil
}
