package faults

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"qledger/api/client"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ms is t0 plus n milliseconds.
func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func wr(key string, from, to int, out Outcome, index uint64) Op {
	return Op{Kind: KindWrite, Key: key, Invoke: ms(from), Complete: ms(to), Outcome: out, Index: index, TxID: "id-" + key}
}

func head(node, level string, from, to int, height, size uint64, hash string) Op {
	return Op{Kind: KindReadHead, Node: node, Level: level, Invoke: ms(from), Complete: ms(to), Outcome: OK,
		Head: client.Head{Height: height, LogSize: size, Hash: hash}}
}

func readTx(node, level, key string, from, to int, found bool, index uint64) Op {
	return Op{Kind: KindReadTx, Node: node, Level: level, Key: key, TxID: "id-" + key, Invoke: ms(from), Complete: ms(to), Outcome: OK, Found: found, Index: index}
}

// finalLog holds keys at indices 0, 1, ... one block per transaction,
// block h+1 holding index h with hash "h<h+1>".
func finalLog(keys ...string) Log {
	l := Log{Hashes: map[uint64]string{}, Size: uint64(len(keys))}
	for i, k := range keys {
		l.Entries = append(l.Entries, Entry{Index: uint64(i), Height: uint64(i + 1), TxID: "id-" + k, Key: k})
		l.Hashes[uint64(i+1)] = "h" + string(rune('1'+i))
	}
	return l
}

// good is a history every checker accepts: two acknowledged writes, an
// unknown one that committed and one that did not, and reads that see
// them in order.
func good() ([]Op, Log) {
	ops := []Op{
		wr("a", 0, 10, OK, 0),
		head("n1", Linearizable, 11, 12, 1, 1, "h1"),
		wr("b", 13, 20, Unknown, 0),
		wr("b", 21, 30, OK, 1),
		wr("c", 31, 40, Unknown, 0),
		wr("d", 41, 50, Failed, 0),
		readTx("n2", Default, "b", 31, 35, true, 1),
		head("n3", Stale, 36, 37, 1, 1, "h1"),
		head("n3", Stale, 41, 42, 3, 3, "h3"),
		head("n1", Default, 51, 52, 3, 3, "h3"),
		readTx("n1", Linearizable, "e", 53, 54, false, 0),
	}
	return ops, finalLog("a", "b", "c")
}

func TestCheckersAcceptAGoodHistory(t *testing.T) {
	ops, log := good()
	if d := CheckDurability(ops, log, func(Entry) error { return nil }); !d.OK() || d.Acked != 2 || d.UnknownPresent != 1 || d.Writes != 4 {
		t.Fatalf("durability: %+v", d)
	}
	if c := CheckChain(ops, log, nil); !c.OK() || c.Heads != 4 {
		t.Fatalf("chain: %+v", c)
	}
	if p := CheckReads(ops, log); len(p) != 0 {
		t.Fatalf("reads: %v", p)
	}
	if l := CheckLinearizable(ops, log, 0, []string{Linearizable, Default}, 10*time.Second); l.Result != porcupine.Ok {
		t.Fatalf("linearizability: %+v", l)
	}
}

// TestCheckersFlagKnownBadHistories: each checker flags the violation it
// exists for.
func TestCheckersFlagKnownBadHistories(t *testing.T) {
	ops, log := good()
	with := func(extra ...Op) []Op { return append(append([]Op(nil), ops...), extra...) }
	tests := []struct {
		name string
		bad  func() []string
		want string
	}{
		{"lost write", func() []string {
			return CheckDurability(with(wr("x", 60, 70, OK, 3)), log, nil).Problems
		}, `acknowledged write "x" (index 3) is not in the log`},
		{"double execution", func() []string {
			return CheckDurability(ops, finalLog("a", "b", "c", "b"), nil).Problems
		}, `write "b" is in the log 2 times`},
		{"timed-out write committed twice", func() []string {
			return CheckDurability(ops, finalLog("a", "b", "c", "c"), nil).Problems
		}, `write "c" is in the log 2 times`},
		{"misplaced receipt", func() []string {
			return CheckDurability(with(wr("a", 60, 70, OK, 2)), log, nil).Problems
		}, `write "a" acknowledged at index 2 is at index 0`},
		{"failed write committed", func() []string {
			return CheckDurability(ops, finalLog("a", "b", "c", "d"), nil).Problems
		}, `write "d" failed definitely but is in the log`},
		{"bad proof", func() []string {
			return CheckDurability(ops, log, func(e Entry) error { return errors.New("root mismatch") }).Problems
		}, "proof: root mismatch"},
		{"forked head", func() []string {
			return CheckChain(with(head("n2", Linearizable, 60, 61, 3, 3, "evil")), log, nil).Problems
		}, "fork at height 3"},
		{"head off the final chain", func() []string {
			return CheckChain(with(head("n2", Stale, 60, 61, 4, 4, "h4")), log, nil).Problems
		}, "is not on the final chain"},
		{"bad head signature", func() []string {
			signed := head("n2", Default, 60, 61, 3, 3, "h3")
			signed.Head.Signature = []byte{1}
			return CheckChain(with(signed), log, func(client.Head) error { return errors.New("not the leader's key") }).Problems
		}, "bad signature"},
		{"uncommitted transaction read", func() []string {
			return CheckReads(with(readTx("n2", Stale, "z", 60, 61, true, 3)), log)
		}, "never committed"},
		{"stale reads going backwards", func() []string {
			return CheckReads(with(head("n3", Stale, 60, 61, 1, 1, "h1")), log)
		}, "stale reads on n3 went backwards: log size 3, then 1"},
		{"stale read at linearizable level", func() []string {
			l := CheckLinearizable(with(head("n2", Linearizable, 60, 61, 1, 1, "h1")), log, 0, []string{Linearizable, Default}, 10*time.Second)
			return []string{string(l.Result)}
		}, string(porcupine.Illegal)},
		{"stale read at default level", func() []string {
			l := CheckLinearizable(with(head("n2", Default, 60, 61, 2, 2, "h2")), log, 0, []string{Linearizable, Default}, 10*time.Second)
			return []string{string(l.Result)}
		}, string(porcupine.Illegal)},
		{"acknowledged write missed by a later read", func() []string {
			l := CheckLinearizable(with(readTx("n2", Linearizable, "a", 60, 61, false, 0)), log, 0, []string{Linearizable, Default}, 10*time.Second)
			return []string{string(l.Result)}
		}, string(porcupine.Illegal)},
		{"unacknowledged write seen before it was sent", func() []string {
			l := CheckLinearizable(with(head("n1", Linearizable, 20, 21, 3, 3, "h3")), log, 0, []string{Linearizable, Default}, 10*time.Second)
			return []string{string(l.Result)}
		}, string(porcupine.Illegal)},
		{"write ordered after a later one", func() []string {
			l := CheckLinearizable([]Op{wr("a", 0, 10, OK, 1), wr("b", 20, 30, OK, 0)}, finalLog("b", "a"), 0, []string{Linearizable, Default}, 10*time.Second)
			return []string{string(l.Result)}
		}, string(porcupine.Illegal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.bad(), "\n")
			if !strings.Contains(got, tt.want) {
				t.Fatalf("want a finding containing %q, got:\n%s", tt.want, got)
			}
		})
	}
}
