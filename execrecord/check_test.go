package execrecord

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"qledger/election"
	"qledger/function"
)

// honest builds the record an honest leader writes for an election among
// n candidates whose executions print outs[i] (in role order; "!" for an
// execution that failed), deciding the outcome as the leader does.
func honest(t *testing.T, n int, outs ...string) Record {
	t.Helper()
	rid := sha256.Sum256([]byte(fmt.Sprint("request", n, outs)))
	key, err := election.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), rid[:])
	if err != nil {
		t.Fatal(err)
	}
	var reveals []election.Reveal
	for i := range n {
		var nonce [election.Size]byte
		nonce[0], nonce[1] = byte(i+1), byte(len(outs))
		reveals = append(reveals, election.Reveal{NodeID: fmt.Sprintf("node-%d", i), Nonce: nonce})
	}
	el, err := election.Elect(key, "key-1", rid[:], reveals)
	if err != nil {
		t.Fatal(err)
	}
	input := []byte(`{"value":1}`)
	r := Record{Version: Version, RequestID: rid, Function: "inc", FnVersion: "1", InputHash: sha256.Sum256(input), Input: input,
		Election: el, Executor: el.Executor(), Verifier: el.Verifier()}
	roles := []string{el.Executor(), el.Verifier(), el.TieBreaker()}
	for i, o := range outs {
		x := Execution{NodeID: roles[i]}
		if o == "!" {
			x.Err = "unreachable"
		} else {
			x.Outcome, x.Stdout = function.OutcomeOK, []byte(o)
			x.Hash = function.ResultHash(x.Outcome, 0, x.Stdout)
		}
		r.Executions = append(r.Executions, x)
	}
	tie := len(outs) == 3
	if tie {
		r.TieBreaker = el.TieBreaker()
	}
	v := Decide(r.Executions, tie)
	if v.Agreed {
		for _, x := range r.Executions {
			if x.Err == "" && x.Hash == v.Hash {
				r.Agreed, r.Verified, r.ResultHash, r.Outcome, r.Response = true, v.Verified, x.Hash, x.Outcome, x.Stdout
				break
			}
		}
	}
	if tie || !v.Agreed {
		r.Conflict = "described"
	}
	return r
}

func TestCheckAcceptsHonestRecords(t *testing.T) {
	cases := []struct {
		name            string
		n               int
		outs            []string
		agreed, checked bool
	}{
		{"alone", 1, []string{"2"}, true, false},
		{"executor and verifier agree", 3, []string{"2", "2"}, true, true},
		{"tie broken", 3, []string{"9", "2", "2"}, true, true},
		{"verifier failed, tie-breaker agrees", 3, []string{"2", "!", "2"}, true, true},
		{"two disagree, no third", 2, []string{"2", "9"}, false, false},
		{"verifier failed, no third", 2, []string{"2", "!"}, false, false},
		{"all three differ", 4, []string{"1", "2", "3"}, false, false},
	}
	for _, c := range cases {
		r := honest(t, c.n, c.outs...)
		if err := Check(r); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if r.Agreed != c.agreed || r.Verified != c.checked {
			t.Errorf("%s: agreed %t verified %t", c.name, r.Agreed, r.Verified)
		}
		bin, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(bin)
		if err != nil || Check(back) != nil {
			t.Errorf("%s: decoded record: %v %v", c.name, err, Check(back))
		}
	}
}

// The one result accepted alone when every other node asked could not
// run: valid only when nothing else ran, and never verified.
func TestCheckUnverified(t *testing.T) {
	for _, outs := range [][]string{{"2", "!"}, {"!", "2"}, {"2", "!", "!"}, {"!", "!", "2"}} {
		r := honest(t, len(outs), outs...)
		var x Execution
		for _, e := range r.Executions {
			if e.Err == "" {
				x = e
			}
		}
		r.Agreed, r.ResultHash, r.Outcome, r.Response = true, x.Hash, x.Outcome, x.Stdout
		if err := Check(r); err != nil {
			t.Fatalf("%v: unverified acceptance: %v", outs, err)
		}
		r.Verified = true
		if err := Check(r); !errors.Is(err, ErrOutcome) {
			t.Fatalf("%v: unverified acceptance marked verified: %v", outs, err)
		}
	}
	r := honest(t, 2, "2", "9")
	x := r.Executions[0]
	r.Agreed, r.ResultHash, r.Outcome, r.Response = true, x.Hash, x.Outcome, x.Stdout
	if err := Check(r); !errors.Is(err, ErrOutcome) {
		t.Fatalf("executor accepted over a verifier that disagreed: %v", err)
	}
}

// Each kind of bad record is rejected with its named error.
func TestCheckRejects(t *testing.T) {
	base := func() Record { return honest(t, 3, "9", "2", "2") }
	cases := []struct {
		name   string
		tamper func(r *Record)
		want   error
	}{
		{"nonce does not hash to h", func(r *Record) { r.Election.Candidates[1].Nonce[5] ^= 1 }, election.ErrNonceMismatch},
		{"stake under another key", func(r *Record) { r.Election.Candidates[2].Stake[31] ^= 1 }, election.ErrStakeMismatch},
		{"commitment to another key", func(r *Record) { r.Election.KeyCommitment[0] ^= 1 }, election.ErrCommitmentMismatch},
		{"candidates out of order", func(r *Record) {
			c := r.Election.Candidates
			c[0], c[1] = c[1], c[0]
		}, election.ErrOrder},
		{"election for another request", func(r *Record) { r.RequestID[0] ^= 1 }, ErrElection},
		{"input hash", func(r *Record) { r.Input = []byte(`{"value":2}`) }, ErrInputHash},
		{"executor is not the highest stake", func(r *Record) { r.Executor, r.Verifier = r.Verifier, r.Executor }, ErrRoles},
		{"verifier is not the runner-up", func(r *Record) { r.Verifier = r.Election.TieBreaker() }, ErrRoles},
		{"tie-breaker named who did not run", func(r *Record) { r.TieBreaker = r.Election.Candidates[1].NodeID }, ErrRoles},
		{"execution by another node", func(r *Record) { r.Executions[1].NodeID = "node-x" }, ErrExecutions},
		{"execution missing", func(r *Record) { r.Executions = r.Executions[:2]; r.TieBreaker = "" }, ErrExecutions},
		{"hash not of its result", func(r *Record) { r.Executions[0].Stdout = []byte("2") }, ErrExecutions},
		{"ran without an outcome", func(r *Record) { r.Executions[2].Outcome = 0 }, ErrExecutions},
		{"agreement claimed wrongly", func(r *Record) { r.Agreed = false }, ErrOutcome},
		{"unverified claimed wrongly", func(r *Record) { r.Verified = false }, ErrOutcome},
		{"response of the outvoted executor", func(r *Record) {
			x := r.Executions[0]
			r.ResultHash, r.Response = x.Hash, x.Stdout
		}, ErrOutcome},
		{"response not the agreed result", func(r *Record) { r.Response = []byte("9") }, ErrOutcome},
		{"conflict left out", func(r *Record) { r.Conflict = "" }, ErrOutcome},
	}
	if err := Check(base()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		r := base()
		c.tamper(&r)
		err := Check(r)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
