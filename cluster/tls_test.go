package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"qledger/pki"
)

func startTLSLocal(t *testing.T, groups, replicas int) (*Local, *pki.CA) {
	t.Helper()
	return startTLSLocalConfig(t, LocalConfig{Groups: groups, Replicas: replicas})
}

// startTLSLocalConfig starts lc's cluster with a new CA.
func startTLSLocalConfig(t *testing.T, lc LocalConfig) (*Local, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lc.CA = ca
	return startLocalConfig(t, lc), ca
}

func nodeCreds(t *testing.T, ca *pki.CA, id string) *pki.Credentials {
	t.Helper()
	cert, err := ca.Issue(pki.Leaf{CommonName: "node", Role: pki.RoleNode, NodeID: id})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.NewCredentials(ca.PEM, cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSGroupCommitsAndFailsOver: a group over mutual TLS commits through
// every node, and a new leader takes over when the leader stops.
func TestTLSGroupCommitsAndFailsOver(t *testing.T) {
	l, _ := startTLSLocal(t, 1, 3)
	for i, n := range l.Nodes {
		submit(t, n, 0, "", fmt.Sprint("over TLS via node ", i))
	}
	ld, _ := l.Leader(0)
	ld.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if nl, ok := l.Leader(0); ok && nl != ld {
			submit(t, nl, 0, "", "after failover")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader over TLS")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSRefusesStrangers: plain TCP, garbage, a certificate from another
// CA and a client (non-node) certificate are refused on the cluster port;
// the node keeps serving.
func TestTLSRefusesStrangers(t *testing.T) {
	l, ca := startTLSLocal(t, 1, 3)
	target := l.Nodes[0]
	addr := target.Info().Addr

	// Plain TCP speaking the RPC framing, and raw garbage.
	for _, payload := range [][]byte{{connRPC, byte(mStatus), 0, 0, 0, 2, '{', '}'}, []byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 4096)} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(payload)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		c.Close()
		if n > 0 && buf[0] == 0 {
			t.Fatalf("plain connection got an RPC answer: %x", buf[:n])
		}
	}

	other, err := pki.NewCA("another cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	strangers := map[string]*pki.Credentials{
		"other CA": nodeCreds(t, other, NewNodeID().String()),
	}
	cli, err := ca.Issue(pki.Leaf{CommonName: "alice", Role: pki.RoleSubmitter, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// A submitter certificate cannot act as a node: it is not even a server
	// certificate, so build its TLS config by hand.
	for name, creds := range strangers {
		c := newRPCClient(2*time.Second, dialer{creds: creds}, nil)
		var st GroupStatus
		if err := c.call(context.Background(), addr, mStatus, struct{}{}, &st); err == nil {
			t.Fatalf("%s: RPC accepted", name)
		}
		c.close()
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{cli.TLS}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
	})
	if err == nil {
		// TLS 1.3 client certificates are checked after the client's
		// handshake returns; the server then closes the connection.
		_, _ = conn.Write([]byte{connRPC, byte(mStatus), 0, 0, 0, 2, '{', '}'})
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 16)
		if n, err := conn.Read(buf); err == nil && n > 0 {
			t.Fatalf("a submitter certificate got an RPC answer on the cluster port")
		}
		conn.Close()
	}

	// The node still serves the cluster.
	submit(t, target, 0, "", "still serving")
}

// TestTLSNodeIdentity: a node whose certificate names another ID cannot
// join under a claimed ID, and a server answering at a configured address
// with another node's certificate is refused.
func TestTLSNodeIdentity(t *testing.T) {
	l, ca := startTLSLocal(t, 1, 3)
	ld := waitLeader(t, l)

	// Join claiming X with a certificate for Y.
	claimed := NewNodeIDInGroup(0, 1).String()
	impostor := nodeCreds(t, ca, NewNodeID().String())
	c := newRPCClient(3*time.Second, dialer{creds: impostor}, nil)
	defer c.close()
	var jr JoinResponse
	err := c.call(context.Background(), ld.Info().Addr, mJoin, JoinRequest{Node: NodeInfo{ID: claimed, Group: 0, Addr: "127.0.0.1:1"}}, &jr)
	if !errors.Is(err, ErrWrongNode) {
		t.Fatalf("join under another ID: got %v, want ErrWrongNode", err)
	}

	// Dialing a configured address that answers with another node's
	// certificate: the dialer expects the configured ID.
	follower := l.Nodes[0]
	if follower == ld {
		follower = l.Nodes[1]
	}
	d := dialer{creds: ld.cfg.TLS}
	if _, err := d.dial(context.Background(), follower.Info().Addr, connRaft, 2*time.Second, claimed); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("dial expecting another ID: got %v, want ErrWrongNode", err)
	}
	if ld.configuredAt(follower.Info().Addr) != follower.Info().ID {
		t.Fatal("the leader does not bind the follower's address to its ID")
	}
	conn, err := d.dial(context.Background(), follower.Info().Addr, connRaft, 2*time.Second, follower.Info().ID)
	if err != nil {
		t.Fatalf("dial expecting the right ID: %v", err)
	}
	conn.Close()

	// A node certificate whose ID differs from the configured node ID.
	cfg := l.configs[0]
	cfg.NodeID = claimed
	cfg.Listener = nil
	cfg.BindAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.TLS = impostor
	if _, err := Open(cfg); err == nil {
		t.Fatal("a node started with a certificate for another ID")
	}
}

// TestTLSGossipNeedsCertificate: with the gossip key and label right, a
// node without a certificate, or with one from another CA, never becomes a
// member of a TLS cluster; a node with a certificate from the cluster CA
// joins through gossip and is added to its group.
func TestTLSGossipNeedsCertificate(t *testing.T) {
	log := &logLines{}
	l, ca := startTLSLocalConfig(t, LocalConfig{Groups: 1, Replicas: 3, Logger: log.logger()})
	other, _ := pki.NewCA("another", time.Hour)
	open := func(creds *pki.Credentials) *Node {
		cfg := l.base
		cfg.Groups, cfg.DataDir, cfg.BindAddr, cfg.GossipBind, cfg.Join = 1, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", l.seeds()
		cfg.InitialVoters, cfg.Listener, cfg.TLS, cfg.Role = nil, nil, creds, RoleExecutor
		if creds == nil {
			cfg.NodeID = NewNodeID().String()
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	plain := open(nil)
	foreign := open(nodeCreds(t, other, NewNodeID().String()))
	good := open(nodeCreds(t, ca, NewNodeID().String()))

	waitUntil(t, "the certified node to be added", time.Minute, func() bool {
		ld, ok := l.Leader(0)
		return ok && ld.configuredAt(good.Info().Addr) == good.Info().ID
	})
	// Each stranger joins through every node of the cluster (all are
	// seeds), so every node must have refused each of them, and must see
	// the certified node.
	for _, n := range l.Nodes {
		for _, s := range []*Node{plain, foreign} {
			waitUntil(t, fmt.Sprintf("node %s to refuse %s", n.ID().Short(), s.ID().Short()), time.Minute, func() bool {
				return log.count("refused gossip member", "node="+n.ID().Short(), "name="+s.Info().ID) > 0
			})
		}
		waitUntil(t, fmt.Sprintf("node %s to see the certified node", n.ID().Short()), time.Minute, func() bool {
			_, ok := n.gossip.view()[good.Info().ID]
			return ok
		})
	}
	for _, n := range l.Nodes {
		v := n.gossip.view()
		if _, ok := v[plain.Info().ID]; ok {
			t.Fatalf("node %s admits a gossip member without a certificate", n.ID().Short())
		}
		if _, ok := v[foreign.Info().ID]; ok {
			t.Fatalf("node %s admits a gossip member with another CA's certificate", n.ID().Short())
		}
	}
}
