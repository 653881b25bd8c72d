package cluster

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"qledger/pki"
)

// TestRaftDialEndsWithStop: a raft dial to a peer that never completes
// its TLS handshake ends as soon as the node stops, not after the
// transport's timeout. Raft's shutdown waits for its RPCs, so before,
// a node cut off from its group took that long again to close after its
// leave gave up (the slow SIGTERM exit of integration/faults'
// leave-cut-off nemesis).
func TestRaftDialEndsWithStop(t *testing.T) {
	ca, err := pki.NewCA("test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln := silentPeer(t)
	stop := make(chan struct{})
	l := &raftLayer{dialer: dialer{creds: nodeCreds(t, ca, NewNodeID().String())}, expect: func(string) string { return "" }, stop: stop}
	const timeout = time.Minute
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := l.Dial(raft.ServerAddress(ln.Addr().String()), timeout)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the dial ended before the stop: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(stop)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the dial succeeded against a peer that never answered")
		}
		t.Logf("dial ended %v after it began: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(timeout / 2):
		t.Fatal("the dial did not end when the node stopped")
	}
}

// TestRaftConnClosesWithStop: a raft call waiting for the answer of a
// peer that never sends one ends as soon as the node stops (its
// connection is closed), and no dial succeeds afterwards. Raft's shutdown
// waits for such calls: a node that left while cut off took up to the
// transport's 10 s more to exit.
func TestRaftConnClosesWithStop(t *testing.T) {
	ln := silentPeer(t)
	stop := make(chan struct{})
	l := &raftLayer{expect: func(string) string { return "" }, stop: stop} // plain TCP: the dial completes
	c, err := l.Dial(raft.ServerAddress(ln.Addr().String()), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the read ended before the stop: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(stop)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read a byte the peer never sent")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not end when the node stopped")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := l.Dial(raft.ServerAddress(ln.Addr().String()), time.Minute)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dials still succeed after the node stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// silentPeer listens on loopback, accepts connections and never sends a
// byte; its connections close when the test ends.
func silentPeer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln
}
