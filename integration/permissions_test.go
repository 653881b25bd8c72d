package integration

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"qledger/api"
	"qledger/api/client"
	"qledger/cluster"
	"qledger/pki"
)

// tlsCluster is an embedded cluster on a CA with an HTTPS API per node.
type tlsCluster struct {
	*cluster.Local
	ca    *pki.CA
	addrs []string // API base URLs, node order
	srvs  []*api.Server
}

func startTLSCluster(t *testing.T, groups, replicas int) *tlsCluster {
	t.Helper()
	ca, err := pki.NewCA("permissions test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	total := groups * replicas
	lns := make([]net.Listener, total)
	addrs := make([]string, total)
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		addrs[i] = "https://" + lns[i].Addr().String()
	}
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: groups, Replicas: replicas, DataDir: t.TempDir(), Base: &base, CA: ca, APIAddrs: addrs, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	tc := &tlsCluster{Local: l, ca: ca, addrs: addrs}
	for i, n := range l.Nodes {
		cfg := api.DefaultConfig()
		cfg.TLS = n.Credentials()
		srv, err := api.New(cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		tc.srvs = append(tc.srvs, srv)
		go srv.Serve(lns[i])
	}
	t.Cleanup(func() {
		for _, s := range tc.srvs {
			_ = s.Shutdown(context.Background())
		}
		l.Close()
	})
	return tc
}

func (tc *tlsCluster) client(t *testing.T, i int, role pki.Role, name string) *client.Client {
	t.Helper()
	cert, err := tc.ca.Issue(pki.Leaf{CommonName: name, Role: role, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(tc.ca.PEM, cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewTLS(tc.addrs[i], creds.ClientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGarbageOnEveryPort sends plain TCP, random bytes and UDP junk to the
// raft/RPC, gossip and API ports of a TLS cluster: nothing crashes, and
// the cluster keeps committing and answering.
func TestGarbageOnEveryPort(t *testing.T) {
	tc := startTLSCluster(t, 1, 3)
	ctx := context.Background()
	target := tc.Nodes[0]
	junk := make([]byte, 8192)
	_, _ = rand.Read(junk)
	ports := map[string]string{
		"raft/RPC": target.Info().Addr,
		"gossip":   target.GossipAddr(),
		"API":      tc.addrs[0][len("https://"):],
	}
	for name, addr := range ports {
		for _, payload := range [][]byte{junk, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {0x16, 0x03, 0x01, 0xff, 0xff}, {1}, {2, 9, 0, 0, 0, 1}} {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_, _ = c.Write(payload)
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 64)
			_, _ = c.Read(buf)
			c.Close()
		}
		if u, err := net.Dial("udp", addr); err == nil {
			for i := 0; i < 20; i++ {
				_, _ = u.Write(junk[:1200])
			}
			u.Close()
		}
	}
	sub := tc.client(t, 0, pki.RoleSubmitter, "alice")
	r, _, err := sub.Submit(ctx, []byte("still serving"), client.SubmitOptions{})
	if err != nil {
		t.Fatalf("after garbage: %v", err)
	}
	if _, err := sub.Tx(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every node still a healthy member", 10*time.Second, func() bool {
		st, err := sub.Cluster(ctx)
		return err == nil && st.Groups[0].HealthyVoters == 3
	})
}

// TestIdempotencyAcrossLeaderChangeTLS: a submitter's retry with the same
// key after the leader dies, through another node's API, is answered from
// the replicated de-duplication table; another caller's same key is its
// own request.
func TestIdempotencyAcrossLeaderChangeTLS(t *testing.T) {
	tc := startTLSCluster(t, 1, 3)
	ctx := context.Background()
	ld, _ := tc.Leader(0)
	var survivor int
	for i, n := range tc.Nodes {
		if n != ld {
			survivor = i
		}
	}
	first := tc.client(t, survivor, pki.RoleSubmitter, "alice")
	r1, _, err := first.Submit(ctx, []byte("pay 10"), client.SubmitOptions{IdempotencyKey: "order-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tc.Nodes {
		if n == ld {
			_ = tc.srvs[i].Shutdown(ctx)
		}
	}
	ld.Close()
	waitFor(t, "a new leader", 20*time.Second, func() bool { nl, ok := tc.Leader(0); return ok && nl != ld })
	again := tc.client(t, survivor, pki.RoleSubmitter, "alice")
	r2, replayed, err := again.Submit(ctx, []byte("pay 10"), client.SubmitOptions{IdempotencyKey: "order-1"})
	if err != nil || !replayed || r2 != r1 {
		t.Fatalf("retry after the leader change: %+v replayed=%v %v, first %+v", r2, replayed, err, r1)
	}
	if _, _, err := again.Submit(ctx, []byte("pay 99"), client.SubmitOptions{IdempotencyKey: "order-1"}); !client.IsStatus(err, 422) {
		t.Fatalf("same key, other body: %v", err)
	}
	bob := tc.client(t, survivor, pki.RoleSubmitter, "bob")
	r3, replayed, err := bob.Submit(ctx, []byte("pay 10"), client.SubmitOptions{IdempotencyKey: "order-1"})
	if err != nil || replayed || r3.ID == r1.ID {
		t.Fatalf("another caller's same key: %+v replayed=%v %v", r3, replayed, err)
	}
}
