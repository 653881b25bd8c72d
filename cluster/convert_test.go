package cluster

import (
	"errors"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// fullLogStore is a raft log store on a full disk.
type fullLogStore struct{ *raft.InmemStore }

func (fullLogStore) StoreLogs([]*raft.Log) error { return syscall.ENOSPC }

// TestConvertLogStoreFailure: a leader whose raft log cannot store an
// entry (a full disk) answers its writes with raft's log cache error; it
// must reach the client as an unknown outcome (503, retry with the same
// key), not as an internal error. integration/faults' TestDiskFull found
// a write through a follower answered 500 with it ("unable to store logs
// within log store ... no space left on device"); before the mapping this
// test fails.
func TestConvertLogStoreFailure(t *testing.T) {
	cache, err := raft.NewLogCache(4, fullLogStore{raft.NewInmemStore()})
	if err != nil {
		t.Fatal(err)
	}
	raw := cache.StoreLogs([]*raft.Log{{Index: 1, Term: 1}})
	if raw == nil {
		t.Fatal("the full log store took the entry")
	}
	var n Node
	if err := n.convert(raw); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("convert(%q) = %v, want ErrUnknownOutcome", raw, err)
	}
	if err := n.convert(errors.New("some other raft failure")); errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("an unrelated error became an unknown outcome: %v", err)
	}
}
