package election

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

var testSessionKey = []byte("0123456789abcdef0123456789abcdef")

// randomRecord elects n candidates with nonces from r under the key derived
// from testSessionKey for requestID.
func randomRecord(t testing.TB, r *rand.Rand, n int, requestID string) (Record, [Size]byte) {
	t.Helper()
	key, err := DeriveKey(testSessionKey, []byte(requestID))
	if err != nil {
		t.Fatal(err)
	}
	reveals := make([]Reveal, n)
	for i := range reveals {
		reveals[i].NodeID = fmt.Sprintf("node-%d", i+1)
		for j := range reveals[i].Nonce {
			reveals[i].Nonce[j] = byte(r.Uint32())
		}
	}
	rec, err := Elect(key, "key-"+requestID, []byte(requestID), reveals)
	if err != nil {
		t.Fatal(err)
	}
	return rec, key
}

func TestElectAndVerify(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for n := 1; n <= 16; n++ {
		rec, key := randomRecord(t, r, n, fmt.Sprintf("req-%d", n))
		if err := Verify(rec); err != nil {
			t.Fatalf("n=%d: Verify: %v", n, err)
		}
		if err := VerifyWithKey(rec, key); err != nil {
			t.Fatalf("n=%d: VerifyWithKey: %v", n, err)
		}
		if err := VerifyWithSessionKey(rec, testSessionKey); err != nil {
			t.Fatalf("n=%d: VerifyWithSessionKey: %v", n, err)
		}
		other := key
		other[31] ^= 1
		if err := VerifyWithKey(rec, other); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("n=%d: wrong key: %v", n, err)
		}
		if err := VerifyWithSessionKey(rec, []byte("another session key, 32 bytes!!")); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("n=%d: wrong session key: %v", n, err)
		}
		if err := VerifyWithSessionKey(rec, []byte("short")); !errors.Is(err, ErrShortSessionKey) {
			t.Fatalf("n=%d: short session key: %v", n, err)
		}
		// Roles.
		if rec.Executor() != rec.Candidates[0].NodeID {
			t.Fatal("executor")
		}
		if (n >= 2) != (rec.Verifier() != "") || (n >= 3) != (rec.TieBreaker() != "") {
			t.Fatalf("n=%d: verifier %q tie-breaker %q", n, rec.Verifier(), rec.TieBreaker())
		}
		// Stakes are h XOR key and nothing in the record is the key.
		for _, c := range rec.Candidates {
			if c.Stake != Stake(key, c.H) || c.H != HashNonce(c.Nonce) {
				t.Fatal("stake or h not computed by the rule")
			}
		}
		if rec.KeyCommitment == key {
			t.Fatal("the record holds the key")
		}
	}
}

// Property: Verify rejects a record with any one field tampered with.
func TestVerifyRejectsTampering(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	bit := func(b *[Size]byte) { i := r.IntN(8 * Size); b[i/8] ^= 1 << (i % 8) }
	type tamper struct {
		name string
		min  int // fewest candidates the tampering needs
		do   func(rec *Record, i int)
		want []error
	}
	tampers := []tamper{
		{"stake", 1, func(rec *Record, i int) { bit(&rec.Candidates[i].Stake) }, []error{ErrStakeMismatch, ErrCommitmentMismatch}},
		{"nonce", 1, func(rec *Record, i int) { bit(&rec.Candidates[i].Nonce) }, []error{ErrNonceMismatch}},
		{"h", 1, func(rec *Record, i int) { bit(&rec.Candidates[i].H) }, []error{ErrNonceMismatch}},
		{"commitment", 1, func(rec *Record, _ int) { bit(&rec.KeyCommitment) }, []error{ErrCommitmentMismatch}},
		{"order", 2, func(rec *Record, i int) {
			j := (i + 1 + r.IntN(len(rec.Candidates)-1)) % len(rec.Candidates)
			rec.Candidates[i], rec.Candidates[j] = rec.Candidates[j], rec.Candidates[i]
		}, []error{ErrOrder}},
		{"duplicate node", 2, func(rec *Record, i int) {
			rec.Candidates[i].NodeID = rec.Candidates[(i+1)%len(rec.Candidates)].NodeID
		}, []error{ErrDuplicateNode}},
		{"node ID", 1, func(rec *Record, i int) { rec.Candidates[i].NodeID = "" }, []error{ErrInvalidNodeID}},
		{"no candidates", 1, func(rec *Record, _ int) { rec.Candidates = nil }, []error{ErrNoCandidates}},
		{"request ID", 1, func(rec *Record, _ int) { rec.RequestID = nil }, []error{ErrInvalidField}},
		{"key ID", 1, func(rec *Record, _ int) { rec.KeyID = "" }, []error{ErrInvalidField}},
	}
	for trial := 0; trial < 300; trial++ {
		n := 1 + r.IntN(8)
		rec, _ := randomRecord(t, r, n, fmt.Sprintf("req-%d", trial))
		tp := tampers[trial%len(tampers)]
		if n < tp.min {
			continue
		}
		bad := rec
		bad.Candidates = append([]Candidate(nil), rec.Candidates...)
		tp.do(&bad, r.IntN(n))
		err := Verify(bad)
		ok := false
		for _, w := range tp.want {
			ok = ok || errors.Is(err, w)
		}
		if !ok {
			t.Fatalf("trial %d, %d candidates, tampered %s: Verify = %v, want one of %v", trial, n, tp.name, err, tp.want)
		}
		if err := Verify(rec); err != nil {
			t.Fatalf("the untampered record fails: %v", err)
		}
	}
}

// TestVerifyCannotDetectConsistentForgery pins down a limit of the seed's
// rule rather than a feature: the election key is stake XOR h, so anyone
// holding a record can re-run the election with other nonces and produce a
// record that Verify (and even VerifyWithSessionKey) accepts. Authenticity
// of a committed record comes from the hash-chained ledger, not from
// Verify; see DESIGN.md.
func TestVerifyCannotDetectConsistentForgery(t *testing.T) {
	rec, _ := randomRecord(t, rand.New(rand.NewPCG(11, 12)), 3, "req-forge")
	key := Stake(rec.Candidates[0].Stake, rec.Candidates[0].H) // recovered from the record alone
	reveals := make([]Reveal, len(rec.Candidates))
	for i, c := range rec.Candidates {
		reveals[i] = Reveal{NodeID: c.NodeID, Nonce: c.Nonce}
	}
	// Grind a nonce for the last-ranked node until it ranks first.
	last := len(reveals) - 1
	for i := 0; ; i++ {
		reveals[last].Nonce[0], reveals[last].Nonce[1] = byte(i), byte(i>>8)
		s, top := Stake(key, HashNonce(reveals[last].Nonce)), rec.Candidates[0].Stake
		if bytes.Compare(s[:], top[:]) > 0 {
			break
		}
	}
	forged, err := Elect(key, rec.KeyID, rec.RequestID, reveals)
	if err != nil {
		t.Fatal(err)
	}
	if forged.Executor() == rec.Executor() {
		t.Fatal("forgery did not change the executor")
	}
	if err := VerifyWithSessionKey(forged, testSessionKey); err != nil {
		t.Fatalf("the consistent forgery is rejected (%v); update DESIGN.md", err)
	}
}
