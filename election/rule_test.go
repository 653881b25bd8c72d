package election

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"qledger/qkd/session"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTable4 is the seed's worked example (Table 4 of seed 000): the rule
// at 16 bits, run through the same XOR and ranking code as the 256-bit
// production rule.
func TestTable4(t *testing.T) {
	key := unhex(t, "809c")
	nodes := []string{"3de1016e288ba240", "e1681f706a664a1a"} // the table's node 1 and node 2 addresses
	hashes := [][]byte{unhex(t, "f9f5"), unhex(t, "e686")}
	wantStakes := []string{"7969", "661a"}
	wantBits := []string{"0111100101101001", "0110011000011010"}

	stakes := make([][]byte, len(hashes))
	for i, h := range hashes {
		stakes[i] = make([]byte, len(h))
		xorInto(stakes[i], h, key)
		if got := hex.EncodeToString(stakes[i]); got != wantStakes[i] {
			t.Fatalf("node %d stake %s, want %s", i+1, got, wantStakes[i])
		}
		if got := fmt.Sprintf("%08b%08b", stakes[i][0], stakes[i][1]); got != wantBits[i] {
			t.Fatalf("node %d stake bits %s, want %s", i+1, got, wantBits[i])
		}
		// The auditor's check: stake XOR h gives back the key.
		back := make([]byte, 2)
		xorInto(back, stakes[i], hashes[i])
		if !bytes.Equal(back, key) {
			t.Fatalf("stake XOR h = %x, want the key", back)
		}
	}
	for _, perm := range [][]int{{0, 1}, {1, 0}} {
		ids := []string{nodes[perm[0]], nodes[perm[1]]}
		st := [][]byte{stakes[perm[0]], stakes[perm[1]]}
		if winner := ids[order(ids, st)[0]]; winner != nodes[0] {
			t.Fatalf("winner %s, want node 1 (%s): 7969 > 661a", winner, nodes[0])
		}
	}
}

func TestOrderTiesByNodeID(t *testing.T) {
	s := []byte{0x12, 0x34}
	ids := []string{"b", "c", "a"}
	got := order(ids, [][]byte{s, s, s})
	if ids[got[0]] != "a" || ids[got[1]] != "b" || ids[got[2]] != "c" {
		t.Fatalf("order %v", got)
	}
}

// DeriveKey must agree with qkd/session.ElectionKey, which the gateway and
// the client use.
func TestDeriveKeyMatchesSession(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		sk := make([]byte, 16+r.IntN(48))
		for j := range sk {
			sk[j] = byte(r.Uint32())
		}
		rid := fmt.Sprintf("request-%d-%x", i, r.Uint64())
		want, err := session.ElectionKey(sk, rid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DeriveKey(sk, []byte(rid))
		if err != nil || got != want {
			t.Fatalf("DeriveKey = %x, %v; session.ElectionKey = %x", got, err, want)
		}
	}
}

func TestDeriveKeyErrors(t *testing.T) {
	if _, err := DeriveKey(make([]byte, MinSessionKeyBytes-1), []byte("r")); !errors.Is(err, ErrShortSessionKey) {
		t.Fatalf("short key: %v", err)
	}
	for _, rid := range [][]byte{nil, make([]byte, MaxIDLen+1)} {
		if _, err := DeriveKey(make([]byte, 32), rid); !errors.Is(err, ErrInvalidField) {
			t.Fatalf("request ID of %d bytes: %v", len(rid), err)
		}
	}
}

func TestCommitKey(t *testing.T) {
	var key [Size]byte
	key[0] = 1
	want := sha256.Sum256(append([]byte("qledger election key commitment"), key[:]...))
	if CommitKey(key) != want {
		t.Fatal("CommitKey is not SHA-256(label || key)")
	}
}

func randomCommits(r *rand.Rand, n int, ties bool) []Commitment {
	out := make([]Commitment, n)
	for i := range out {
		out[i].NodeID = fmt.Sprintf("node-%03d", r.IntN(1000)*1000+i)
		for j := range out[i].H {
			out[i].H[j] = byte(r.Uint32())
		}
		if ties && i > 0 && r.IntN(3) == 0 {
			out[i].H = out[r.IntN(i)].H // equal stakes: ordered by node ID
		}
	}
	return out
}

// Property: any permutation of the candidates gives the same ranking.
func TestRankIgnoresInputOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		var key [Size]byte
		for j := range key {
			key[j] = byte(r.Uint32())
		}
		commits := randomCommits(r, 1+r.IntN(20), trial%2 == 0)
		want, err := Rank(key, commits)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(want); i++ {
			if !before(want[i-1].Stake[:], want[i-1].NodeID, want[i].Stake[:], want[i].NodeID) {
				t.Fatalf("trial %d: ranking not sorted at %d", trial, i)
			}
		}
		for p := 0; p < 5; p++ {
			perm := append([]Commitment(nil), commits...)
			r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			got, err := Rank(key, perm)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("trial %d: permutation changes position %d: %s vs %s", trial, i, got[i].NodeID, want[i].NodeID)
				}
			}
		}
	}
}

func TestRankErrors(t *testing.T) {
	var key [Size]byte
	cases := []struct {
		name    string
		commits []Commitment
		want    error
	}{
		{"none", nil, ErrNoCandidates},
		{"duplicate", []Commitment{{NodeID: "a"}, {NodeID: "a"}}, ErrDuplicateNode},
		{"empty node ID", []Commitment{{NodeID: ""}}, ErrInvalidNodeID},
		{"control character", []Commitment{{NodeID: "a\nb"}}, ErrInvalidNodeID},
		{"not UTF-8", []Commitment{{NodeID: "\xff"}}, ErrInvalidNodeID},
		{"long node ID", []Commitment{{NodeID: strings.Repeat("x", MaxIDLen+1)}}, ErrInvalidNodeID},
		{"too many", randomCommits(rand.New(rand.NewPCG(5, 6)), MaxCandidates+1, false), ErrTooManyCandidates},
	}
	for _, c := range cases {
		if _, err := Rank(key, c.commits); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
