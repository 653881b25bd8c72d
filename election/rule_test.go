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

	"qledger/qkd"
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
// at 16 bits. Only the raw transmission, the two node addresses and the
// two nonce hashes are taken from the table; the key, the stakes and the
// winner are computed and compared with the table's rows.
//
// The key: the table's first rows are the paper-mode QKD run (64 raw bits,
// bases agreeing on alternate positions, even half published, odd half
// kept), so qkd.Paper derives it from the raw bits: 809c.
//
// The hashes: the table's row is "hash value (nonce)", and the text has
// every node draw a random number and hash it; the nonces are not printed.
// They are not hashes of the addresses either: no 16-bit window of MD5,
// SHA-1, SHA-2, SHA-3, BLAKE2 or SHAKE over the address (raw, ASCII,
// decimal) gives both f9f5 and e686, and the SHA-256 case is asserted
// below. So what links a node to its hash is its nonce, and
// TestHashIsTheNonces checks that the implementation's h is SHA-256 of the
// nonce alone, whatever the node's address.
func TestTable4(t *testing.T) {
	key := paperKey(t, "608918c0659e33dc")
	if got := hex.EncodeToString(key); got != "809c" {
		t.Fatalf("paper-mode key from the table's transmission = %s, want 809c", got)
	}
	nodes := []string{"3de1016e288ba240", "e1681f706a664a1a"} // the table's node 1 and node 2 addresses
	hashes := [][]byte{unhex(t, "f9f5"), unhex(t, "e686")}
	wantStakes := []string{"7969", "661a"}
	wantBits := []string{"0111100101101001", "0110011000011010"}
	for i, a := range nodes {
		if h := sha256.Sum256(unhex(t, a)); bytes.Equal(h[:2], hashes[i]) {
			t.Fatalf("node %d's hash is SHA-256 of its address after all: revise the comment above", i+1)
		}
	}

	// At 16 bits, with the width-generic XOR and ranking.
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

	// Through the production rule (Rank, 256 bits): the table's values in
	// the top 16 bits, zeros below, rank the same way.
	var k256 [Size]byte
	copy(k256[:], key)
	for _, perm := range [][]int{{0, 1}, {1, 0}} {
		var commits []Commitment
		for _, i := range perm {
			c := Commitment{NodeID: nodes[i]}
			copy(c.H[:], hashes[i])
			commits = append(commits, c)
		}
		cands, err := Rank(k256, commits)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cands {
			if c.NodeID != nodes[i] || hex.EncodeToString(c.Stake[:2]) != wantStakes[i] || !bytes.Equal(c.Stake[2:], make([]byte, Size-2)) {
				t.Fatalf("Rank place %d: %s with stake %x, want %s with %s00...", i, c.NodeID, c.Stake, nodes[i], wantStakes[i])
			}
		}
	}
}

// paperKey runs the paper-mode QKD of Table 4 on a raw transmission that
// arrives intact, with the bases agreeing on the alternate (odd) positions.
func paperKey(t *testing.T, rawHex string) []byte {
	t.Helper()
	raw, err := qkd.ParseHex(rawHex)
	if err != nil {
		t.Fatal(err)
	}
	n := raw.Len()
	aliceBases, bobBases, detected := qkd.NewBits(n), qkd.NewBits(n), qkd.NewBits(n)
	for i := 0; i < n; i++ {
		detected.Set(i, 1)
		bobBases.Set(i, uint64(i%2))
	}
	r, err := qkd.Paper(qkd.AliceRecord{Bits: raw, Bases: aliceBases},
		qkd.BobRecord{Detected: detected, Bases: bobBases, Results: raw.Clone()})
	if err != nil {
		t.Fatal(err)
	}
	return r.Key.Bytes()
}

// TestHashIsTheNonces: a candidate's h is SHA-256 of its nonce, nothing
// else; the node's ID (its address) does not enter it, so two nodes that
// swap nonces swap hashes and stakes.
func TestHashIsTheNonces(t *testing.T) {
	var key [Size]byte
	copy(key[:], unhex(t, "809c"))
	n1, n2 := [Size]byte{1}, [Size]byte{2}
	a, b := "3de1016e288ba240", "e1681f706a664a1a"
	rec1, err := Elect(key, "k", []byte("r"), []Reveal{{a, n1}, {b, n2}})
	if err != nil {
		t.Fatal(err)
	}
	rec2, err := Elect(key, "k", []byte("r"), []Reveal{{a, n2}, {b, n1}})
	if err != nil {
		t.Fatal(err)
	}
	byNode := func(r Record) map[string]Candidate {
		m := map[string]Candidate{}
		for _, c := range r.Candidates {
			m[c.NodeID] = c
		}
		return m
	}
	m1, m2 := byNode(rec1), byNode(rec2)
	for id, nonce := range map[string][Size]byte{a: n1, b: n2} {
		if want := sha256.Sum256(nonce[:]); m1[id].H != want {
			t.Fatalf("%s: h = %x, want SHA-256(nonce) = %x", id, m1[id].H, want)
		}
	}
	if m1[a].H != m2[b].H || m1[b].H != m2[a].H || m1[a].Stake != m2[b].Stake {
		t.Fatal("swapping nonces between nodes did not swap their hashes and stakes")
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
