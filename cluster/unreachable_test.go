package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"qledger/chain"
)

// TestForwardToUnreachableGroup: a read, an invocation and a write for
// another group whose every member refuses connections are answered
// ErrNoLeader (the read and the invocation) or ErrUnknownOutcome (the
// write), which the API answers 503 with a retry, never the bare
// connection error (a 500).
func TestForwardToUnreachableGroup(t *testing.T) {
	base := DefaultConfig()
	base.LoopbackTiming()
	l := startLocalConfig(t, LocalConfig{Groups: 1, Replicas: 1, Base: &base})
	n := l.Nodes[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	const other = 1
	n.dir.merge([]dirEntry{{NodeInfo: NodeInfo{ID: NewNodeID().String(), Group: other, Addr: addr}, Epoch: time.Now().UnixNano()}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = n.forwardQuery(ctx, Query{Op: opHead, Group: other, Level: Default})
	if !errors.Is(err, ErrNoLeader) {
		t.Errorf("a read of the unreachable group: %v, want ErrNoLeader", err)
	}
	_, err = n.invokeOnce(ctx, InvokeRequest{Group: other, Function: "echo", Input: []byte("x")})
	if !errors.Is(err, ErrNoLeader) {
		t.Errorf("an invocation at the unreachable group: %v, want ErrNoLeader", err)
	}
	tx := chain.Tx{Kind: chain.TxData, Group: other, Payload: []byte("x")}
	raw := tx.Encode()
	_, err = n.forwardSubmit(ctx, raw, other, 0)
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("a write to the unreachable group: %v, want ErrUnknownOutcome", err)
	}
}
