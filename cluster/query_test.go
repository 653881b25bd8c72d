package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestUnsupportedOpFromAnotherNode: a node answers a query op it does not
// know with ErrBadRequest naming the op, as every release does; across the
// wire unsupportedOp tells that from other bad requests and makes it
// ErrUnsupported, which itself survives a hop.
func TestUnsupportedOpFromAnotherNode(t *testing.T) {
	l := startLocal(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := l.Nodes[0]
	other := 1 - n.Group()
	_, err := n.query(ctx, Query{Op: "nodes-v9", Group: other})
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("an unknown op on group %d: %v", other, err)
	}
	if got := unsupportedOp(err, "nodes-v9"); !errors.Is(got, ErrUnsupported) || errors.Is(got, ErrBadRequest) {
		t.Fatalf("unsupportedOp: %v", got)
	}
	// A range past the log is a bad request still.
	_, err = n.LogNodes(ctx, other, 0, 0, 5, Default)
	if !errors.Is(err, ErrBadRequest) || errors.Is(err, ErrUnsupported) {
		t.Fatalf("nodes past the log: %v", err)
	}
	if re := remoteErr(codeOf(ErrUnsupported), "x"); !errors.Is(re, ErrUnsupported) {
		t.Fatalf("ErrUnsupported does not survive a hop: %v", re)
	}
}
