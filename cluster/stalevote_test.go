package cluster

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// cutListener drops, while cut is set, every raft connection to the node
// as soon as it reads from it: the node receives no raft traffic (and
// nothing sent meanwhile arrives later). Its own requests and internal
// RPCs go through.
type cutListener struct {
	net.Listener
	cut *atomic.Bool
}

func (l cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, cut: l.cut}, nil
}

type cutConn struct {
	net.Conn
	cut   *atomic.Bool
	typed bool // the connection's type byte has been read
	raft  bool
}

func (c *cutConn) Read(p []byte) (int, error) {
	if !c.typed && len(p) > 0 {
		n, err := c.Conn.Read(p[:1])
		c.typed, c.raft = n == 1, n == 1 && p[0] == connRaft
		return n, err
	}
	n, err := c.Conn.Read(p)
	// Checked after the read, which may have waited for the bytes: what
	// arrives while cut is dropped.
	if c.raft && c.cut.Load() {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}

// TestVoterBehindAPromotionElectsThePromoted: a standby is promoted by the
// leader and itself while the third voter receives nothing, then the
// leader dies. The voter left behind holds a configuration of two voters,
// the dead leader and itself, and no longer hears from anyone who could
// bring it the promotion; the promoted standby needs its vote. Raft alone
// refuses that vote (the standby is no voter in the voter's configuration)
// and the group stays leaderless for good; the node's transport lets the
// vote through because the standby's log is ahead (stalevote.go).
func TestVoterBehindAPromotionElectsThePromoted(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	base.StabilizationTime = time.Hour // the test promotes, not the reconciler
	// The leader's lease counts the cut voter until the promotion is
	// appended: a lease of a second keeps it leading meanwhile.
	base.HeartbeatTimeout, base.ElectionTimeout, base.LeaderLeaseTimeout = time.Second, time.Second, time.Second
	var cut [2]atomic.Bool
	logs := &logLines{}
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 2, Base: &base, Logger: logs.logger(),
		WrapListener: func(i int, ln net.Listener) net.Listener { return cutListener{Listener: ln, cut: &cut[i]} }})
	standby, err := l.AddNode(RoleVoter, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the standby added as a non-voter", time.Minute, func() bool {
		servers, ok := leaderServers(l, 0)
		s, in := suffrage(servers, standby.info.ID)
		return ok && in && s == raft.Nonvoter
	})

	// On a loaded machine leadership may move before the promotion: it
	// is tried again from the leader of the moment while raft refuses it
	// outright (nothing appended).
	var ld, behind *Node
	waitUntil(t, "the leader to take the promotion", 2*time.Minute, func() bool {
		ld = waitLeader(t, l)
		behind = l.Nodes[1-indexOf(l, ld)]
		cut[indexOf(l, behind)].Store(true)
		err := ld.raft.AddVoter(raft.ServerID(standby.info.ID), raft.ServerAddress(standby.info.Addr), 0, time.Minute).Error()
		if errors.Is(err, raft.ErrNotLeader) {
			cut[indexOf(l, behind)].Store(false)
			return false
		}
		if err != nil {
			t.Fatalf("promote the standby: %v", err)
		}
		return true
	})
	if !ld.IsLeader() {
		t.Fatal("leadership moved during the promotion; the case needs the leader to commit it")
	}
	cf := behind.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	if s, _ := suffrage(cf.Configuration().Servers, standby.info.ID); s == raft.Voter {
		t.Fatal("the promotion reached the cut voter")
	}
	if err := ld.Close(); err != nil {
		t.Fatal(err)
	}
	cut[indexOf(l, behind)].Store(false)

	waitUntil(t, "a leader after the leader's death", 2*time.Minute, func() bool { return standby.IsLeader() || behind.IsLeader() })
	waitUntil(t, "the voter left behind to hold the promotion", time.Minute, func() bool {
		cf := behind.raft.GetConfiguration()
		s, _ := suffrage(cf.Configuration().Servers, standby.info.ID)
		return cf.Error() == nil && s == raft.Voter
	})
	submit(t, behind, 0, "", "committed by the promoted standby and the voter left behind")
}
