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
	// A peer that accepts TCP connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
