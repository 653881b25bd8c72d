package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"qledger/api/client"
)

// TestLeaveOnRequest checks POST /v1/node/leave: the node leaves, answers,
// and Left tells its process to stop; Stop afterwards does not leave
// twice.
func TestLeaveOnRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Start(testNodeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	waitReady(ctx, t, a)
	// Alone, the node is its group's only voter: it may not leave.
	ac, err := client.New(a.Cluster().Info().APIAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *client.APIError
	if err := ac.Leave(ctx); !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Body.Error, "only voter") {
		t.Fatalf("the only voter's leave: %v, want 400 naming the only voter", err)
	}
	select {
	case <-a.Left():
		t.Fatal("the only voter left")
	default:
	}
	bcfg := testNodeConfig(t)
	bcfg.Cluster.Bootstrap = false
	bcfg.Cluster.Join = []string{a.Cluster().GossipAddr()}
	b, err := Start(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	bID := b.Cluster().ID().String()
	waitFor(ctx, t, "b in the group's configuration", func() bool { return memberOf(ctx, a, bID) })
	select {
	case <-b.Left():
		t.Fatal("Left before any leave")
	default:
	}
	bc, err := client.New(b.Cluster().Info().APIAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Left():
	case <-ctx.Done():
		t.Fatal("Left not closed after a leave")
	}
	// Removed at once; gossip may show it alive a moment longer, which
	// must not bring it back for good.
	waitFor(ctx, t, "b out of the group's configuration", func() bool { return !memberOf(ctx, a, bID) })
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// memberOf reports whether id is in the raft configuration of n's group.
func memberOf(ctx context.Context, n *Node, id string) bool {
	for _, m := range n.Cluster().Status(ctx).Groups[0].Members {
		if m.ID == id && m.Suffrage != "none" {
			return true
		}
	}
	return false
}

func waitReady(ctx context.Context, t *testing.T, n *Node) {
	t.Helper()
	c, err := client.New(n.Cluster().Info().APIAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "ready", func() bool { return c.Ready(ctx) == nil })
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
