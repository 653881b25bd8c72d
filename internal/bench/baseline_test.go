package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"qledger/cluster"
)

// TestBaseline starts a bare raft group, commits through its leader,
// commits through the next leader once that one is gone, and refuses
// writes once it is closed.
func TestBaseline(t *testing.T) {
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := StartBaseline(ctx, t.TempDir(), 3, base)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := b.Apply([]byte("entry")); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.leader().AppliedIndex(); n < 10 {
		t.Fatalf("applied index %d after 10 entries", n)
	}
	// Apply follows leadership, as the ledger's writes do: with the
	// leader gone, it waits for the next one.
	if err := b.leader().Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]byte("after the leader's death")); err != nil {
		t.Fatalf("Apply while the group elects a new leader: %v", err)
	}
	b.Close()
	if err := b.Apply([]byte("after close")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Apply after Close: %v, want ErrNoLeader", err)
	}
}
