package fsm

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"qledger/chain"
)

// newerCommand is a command of the next command version: this node
// cannot read it, whatever follows the version byte.
func newerCommand() []byte {
	b := EncodeAppendBlock(1, [][]byte{tx(0, "", "from the future", 9)})
	b[0] = CommandVersion + 1
	return b
}

// newerTx is a current command carrying a transaction of the next
// transaction version.
func newerTx() []byte {
	t := tx(0, "", "tx from the future", 8)
	t[0] = chain.TxVersion + 1
	return EncodeAppendBlock(1, [][]byte{t})
}

func TestDecodeCommandNamesNewerVersions(t *testing.T) {
	for name, b := range map[string][]byte{"command": newerCommand(), "transaction": newerTx()} {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrNewerVersion) || errors.Is(err, ErrBadCommand) {
			t.Errorf("%s of a newer version: %v, want ErrNewerVersion only", name, err)
		}
	}
	if _, err := DecodeCommand([]byte{0, 1}); !errors.Is(err, ErrBadCommand) {
		t.Errorf("version 0: %v, want ErrBadCommand", err)
	}
}

// TestApplyStopsAtNewerVersion: replicas of this version apply the entries
// before an entry they cannot read, then stop at it (identically, however
// the entries are batched), refuse every later entry and refuse to
// snapshot, so nothing is skipped that a newer replica applies.
func TestApplyStopsAtNewerVersion(t *testing.T) {
	for name, bad := range map[string][]byte{"command": newerCommand(), "transaction": newerTx()} {
		t.Run(name, func(t *testing.T) {
			entries := [][]byte{
				EncodeAppendBlock(1, [][]byte{tx(0, "a", "before", 1)}),
				bad,
				EncodeAppendBlock(3, [][]byte{tx(0, "b", "after", 2)}),
			}
			batched, single := newFSM(t, 0), newFSM(t, 0)
			logs := make([]*raft.Log, len(entries))
			for i, e := range entries {
				logs[i] = &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e}
			}
			out := batched.ApplyBatch(logs)
			for i, e := range entries {
				apply(single, uint64(i+1), e)
			}
			if r := out[0].(*ApplyResult); r.Err != nil || r.Block == nil {
				t.Fatalf("entry before the newer one: %+v", r)
			}
			for i := 1; i < len(out); i++ {
				if r := out[i].(*ApplyResult); !errors.Is(r.Err, ErrNewerVersion) || r.Block != nil {
					t.Fatalf("entry %d: %+v, want ErrNewerVersion", i+1, r)
				}
			}
			for _, f := range []*FSM{batched, single} {
				if !errors.Is(f.Err(), ErrNewerVersion) {
					t.Fatalf("Err = %v, want ErrNewerVersion", f.Err())
				}
				if idx, _ := f.Store().AppliedIndex(); idx != 1 {
					t.Fatalf("applied index %d, want 1 (stopped before the newer entry)", idx)
				}
				if h, ok, _ := f.Store().Head(); !ok || h.Height != 1 {
					t.Fatalf("head %+v %v, want height 1", h, ok)
				}
				if r := apply(f, 4, EncodeAppendBlock(4, [][]byte{tx(0, "c", "later", 3)})); !errors.Is(r.Err, ErrNewerVersion) {
					t.Fatalf("a later entry: %v, want the sticky ErrNewerVersion", r.Err)
				}
				if _, err := f.Snapshot(); !errors.Is(err, ErrNewerVersion) {
					t.Fatalf("Snapshot of a stopped FSM: %v, want refused", err)
				}
			}
		})
	}
}
