package faults

import (
	"errors"
	"fmt"
	"maps"
	"slices"
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

// invoke is an invocation attempt by caller "submitter:i" with input
// "run-i<key>", request ID "rid-<key>"; an acknowledged one is answered
// with index and result "res-<key>", output its input.
func invoke(key string, from, to int, out Outcome, index uint64) Op {
	op := Op{Kind: KindInvoke, Key: "run-i" + key, RequestID: "rid-" + key, Caller: "submitter:i", Invoke: ms(from), Complete: ms(to), Outcome: out}
	if out == OK {
		op.Index, op.Result, op.Output = index, "res-"+key, []byte("run-i"+key)
	}
	return op
}

// withRecords is l with the execution records of keys appended, one
// transaction in one block each, as invoke answers them.
func withRecords(l Log, keys ...string) Log {
	l.Hashes = maps.Clone(l.Hashes)
	l.Entries = slices.Clone(l.Entries)
	for _, k := range keys {
		l.Entries = append(l.Entries, Entry{Index: l.Size, Height: l.Size + 1, TxID: "id-x" + k, Key: "invoke/rid-" + k,
			Exec: &ExecEntry{RequestID: "rid-" + k, Caller: "submitter:i", Input: []byte("run-i" + k), Agreed: true, Result: "res-" + k, Output: []byte("run-i" + k)}})
		l.Size++
		l.Hashes[l.Size] = "h" + string(rune('0'+l.Size))
	}
	return l
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
// unknown one that committed and one that did not, reads that see them in
// order, and invocations: one acknowledged at once, one acknowledged on
// its retry (a replay of the record), one unknown that was recorded and
// one that was not.
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
		invoke("p", 60, 70, OK, 3),
		invoke("q", 71, 75, Unknown, 0),
		invoke("q", 76, 80, OK, 4),
		invoke("r", 81, 90, Unknown, 0),
		invoke("s", 91, 95, Unknown, 0),
	}
	return ops, withRecords(finalLog("a", "b", "c"), "p", "q", "r")
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
	if l := CheckLinearizable(ops, log, 0, []string{Linearizable, Default}); l.Result != porcupine.Ok {
		t.Fatalf("linearizability: %+v", l)
	}
	if x := CheckExecution(ops, log, "run-i"); !x.OK() || x.Invocations != 4 || x.Acked != 2 || x.Records != 3 || x.UnknownPresent != 1 || x.UnknownAbsent != 1 {
		t.Fatalf("execution: %+v", x)
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
			return CheckChain(with(head("n2", Stale, 60, 61, 9, 9, "h9")), log, nil).Problems
		}, "is not on the final chain"},
		{"bad head signature", func() []string {
			signed := head("n2", Default, 60, 61, 3, 3, "h3")
			signed.Head.Signature = []byte{1}
			return CheckChain(with(signed), log, func(client.Head) error { return errors.New("not the leader's key") }).Problems
		}, "bad signature"},
		{"unsigned head", func() []string {
			return CheckChain(with(head("n2", Default, 60, 61, 3, 3, "h3")), log, func(client.Head) error { return nil }).Problems
		}, "head 3 from n2 at default level is not signed"},
		{"uncommitted transaction read", func() []string {
			return CheckReads(with(readTx("n2", Stale, "z", 60, 61, true, 3)), log)
		}, "never committed"},
		{"stale reads going backwards", func() []string {
			return CheckReads(with(head("n3", Stale, 60, 61, 1, 1, "h1")), log)
		}, "stale reads on n3 went backwards: log size 3, then 1"},
		{"stale read at linearizable level", func() []string {
			return linVerdicts(with(head("n2", Linearizable, 60, 61, 1, 1, "h1")), log)
		}, "Illegal/Illegal"},
		{"stale read at default level", func() []string {
			return linVerdicts(with(head("n2", Default, 60, 61, 2, 2, "h2")), log)
		}, "Illegal/Illegal"},
		{"acknowledged write missed by a later read", func() []string {
			return linVerdicts(with(readTx("n2", Linearizable, "a", 60, 61, false, 0)), log)
		}, "Illegal/Illegal"},
		{"unacknowledged write seen before it was sent", func() []string {
			return linVerdicts(with(head("n1", Linearizable, 20, 21, 3, 3, "h3")), log)
		}, "Illegal/Illegal"},
		{"write ordered after a later one", func() []string {
			return linVerdicts([]Op{wr("a", 0, 10, OK, 1), wr("b", 20, 30, OK, 0)}, finalLog("b", "a"))
		}, "Illegal/Illegal"},
		{"invocation executed twice", func() []string {
			return CheckExecution(ops, withRecords(log, "q"), "run-i").Problems
		}, "request rid-q of submitter:i has 2 execution records"},
		{"unknown invocation executed twice", func() []string {
			return CheckExecution(ops, withRecords(log, "r"), "run-i").Problems
		}, "request rid-r of submitter:i has 2 execution records"},
		{"acknowledged invocation without a record", func() []string {
			return CheckExecution(with(invoke("t", 100, 110, OK, 6)), log, "run-i").Problems
		}, "acknowledged request rid-t of submitter:i (index 6) has no execution record"},
		{"retry answered a changed result", func() []string {
			retry := invoke("p", 100, 110, OK, 3)
			retry.Result, retry.Output = "res-other", []byte("other")
			return CheckExecution(with(retry), log, "run-i").Problems
		}, `request rid-p of submitter:i answered result res-other (output "other")`},
		{"record of a request never sent", func() []string {
			return CheckExecution(ops, withRecords(log, "u"), "run-i").Problems
		}, "of request rid-u by submitter:i: no client sent it"},
		{"record of another caller", func() []string {
			l := withRecords(log, "s")
			l.Entries[len(l.Entries)-1].Exec.Caller = "submitter:other"
			return CheckExecution(ops, l, "run-i").Problems
		}, "of request rid-s by submitter:other: no client sent it"},
		{"record with another input", func() []string {
			l := withRecords(log)
			l.Entries[3].Exec.Input = []byte("run-iforged")
			return CheckExecution(ops, l, "run-i").Problems
		}, `the record at index 3 holds input "run-iforged", the client sent "run-ip"`},
		{"record of executions that disagree", func() []string {
			l := withRecords(log)
			l.Entries[5].Exec.Agreed = false
			return CheckExecution(ops, l, "run-i").Problems
		}, "the executions recorded at index 5 disagree"},
		{"invocation acknowledged at another index", func() []string {
			return CheckExecution(with(invoke("p", 100, 110, OK, 4)), log, "run-i").Problems
		}, "answered with a receipt at index 4; the record is at 3"},
		{"invocation committed out of real-time order", func() []string {
			return linVerdicts([]Op{invoke("p", 0, 10, OK, 1), invoke("q", 20, 30, OK, 0)}, withRecords(Log{Hashes: map[uint64]string{}}, "q", "p"))
		}, "Illegal/Illegal"},
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

// linVerdicts is CheckLinearizable's verdict on ops and porcupine's on
// one window holding them all, as "exact/porcupine".
func linVerdicts(ops []Op, log Log) []string {
	both := []string{Linearizable, Default}
	l := CheckLinearizable(ops, log, 0, both)
	w := CheckLinearizableWindows(ops, log, 0, both, []Window{{Name: "all", Start: ms(-1000), Settled: ms(1000)}}, Budget{Time: 10 * time.Second})
	return []string{fmt.Sprintf("%s/%s", l.Result, w[0].Result)}
}

// TestLinearizableWindows: a history cut into windows anywhere is
// linearizable in each window when it is as a whole (the window's model
// starts from a lower bound, never from too much), and a violation shows
// in the window it happened in, not in the others.
func TestLinearizableWindows(t *testing.T) {
	ops, log := good()
	levels := []string{Linearizable, Default}
	for cut := 0; cut <= 100; cut++ {
		ws := []Window{{Name: "before", Start: ms(0), Settled: ms(cut)}, {Name: "after", Start: ms(cut), Settled: ms(200)}}
		// Chunks of 1 to 4 operations cut each window further.
		for chunk := range 5 {
			for i, v := range CheckLinearizableWindows(ops, log, 0, levels, ws, Budget{Ops: chunk, Time: 10 * time.Second}) {
				if v.Result != porcupine.Ok {
					t.Fatalf("cut at %d ms, chunks of %d: window %s: %s, want Ok", cut, chunk, ws[i].Name, v.Result)
				}
			}
		}
	}
	// A write in flight across the cut has not taken effect when a read
	// in the later window misses it: the later window must not start from
	// what that write covers.
	slow := []Op{wr("a", 0, 10, OK, 0), wr("b", 25, 100, OK, 1), head("n1", Linearizable, 40, 45, 1, 1, "h1")}
	ws := []Window{{Name: "before", Start: ms(0), Settled: ms(30)}, {Name: "after", Start: ms(30), Settled: ms(200)}}
	for i, v := range CheckLinearizableWindows(slow, finalLog("a", "b"), 0, levels, ws, Budget{Time: 10 * time.Second}) {
		if v.Result != porcupine.Ok {
			t.Fatalf("a write in flight across the cut: window %s: %s, want Ok", ws[i].Name, v.Result)
		}
	}
	bad := append(append([]Op(nil), ops...), head("n2", Linearizable, 150, 151, 1, 1, "h1"))
	ws = []Window{{Name: "clean", Start: ms(0), Settled: ms(100)}, {Name: "stale", Start: ms(100), Settled: ms(200)}}
	vs := CheckLinearizableWindows(bad, log, 0, levels, ws, Budget{Time: 10 * time.Second})
	if vs[0].Result != porcupine.Ok || vs[1].Result != porcupine.Illegal {
		t.Fatalf("verdicts %s, %s; want Ok for the clean window, Illegal for the one with the stale read", vs[0].Result, vs[1].Result)
	}
}
