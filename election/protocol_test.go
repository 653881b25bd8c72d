package election

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTransport answers for the candidates with function fields; nil
// fields use honest nodes with nonceFor(id).
type fakeTransport struct {
	commit func(ctx context.Context, id string) ([Size]byte, error)
	reveal func(ctx context.Context, id string) ([Size]byte, error)
}

func (f fakeTransport) Commit(ctx context.Context, id string, _ []byte) ([Size]byte, error) {
	if f.commit != nil {
		return f.commit(ctx, id)
	}
	return HashNonce(nonceFor(id)), nil
}

func (f fakeTransport) Reveal(ctx context.Context, id string, _ []byte) ([Size]byte, error) {
	if f.reveal != nil {
		return f.reveal(ctx, id)
	}
	return nonceFor(id), nil
}

func runConfig(t *testing.T, ids ...string) (RunConfig, [Size]byte) {
	t.Helper()
	key, err := DeriveKey(testSessionKey, []byte("req-run"))
	if err != nil {
		t.Fatal(err)
	}
	return RunConfig{RequestID: []byte("req-run"), KeyID: "key-1", Key: key, Candidates: ids, Phase: 2 * time.Second}, key
}

// Run with honest candidates gives the record Elect computes from the
// same nonces, and it verifies under the session key.
func TestRunHonest(t *testing.T) {
	ids := []string{"n1", "n2", "n3", "n4"}
	cfg, key := runConfig(t, ids...)
	rec, err := Run(context.Background(), cfg, fakeTransport{})
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyWithSessionKey(rec, testSessionKey); err != nil {
		t.Fatal(err)
	}
	var reveals []Reveal
	for _, id := range ids {
		reveals = append(reveals, Reveal{NodeID: id, Nonce: nonceFor(id)})
	}
	want, _ := Elect(key, "key-1", []byte("req-run"), reveals)
	a, _ := rec.MarshalBinary()
	b, _ := want.MarshalBinary()
	if string(a) != string(b) {
		t.Fatalf("Run's record differs from Elect's:\n%+v\n%+v", rec, want)
	}
}

// Nodes that fail, lie or stall in either phase are left out; the others
// keep their order; nobody left is ErrNoCandidates.
func TestRunLeavesOutFaultyNodes(t *testing.T) {
	cfg, _ := runConfig(t, "ok1", "nocommit", "badnonce", "noreveal", "slow", "ok2")
	cfg.Phase = 300 * time.Millisecond
	var wrongID atomic.Bool
	tr := fakeTransport{
		commit: func(ctx context.Context, id string) ([Size]byte, error) {
			switch id {
			case "nocommit":
				return [Size]byte{}, errors.New("unreachable")
			case "slow":
				<-ctx.Done() // answers only after the phase closed
				return HashNonce(nonceFor(id)), nil
			}
			return HashNonce(nonceFor(id)), nil
		},
		reveal: func(ctx context.Context, id string) ([Size]byte, error) {
			switch id {
			case "badnonce":
				return nonceFor("someone else"), nil
			case "noreveal":
				return [Size]byte{}, errors.New("gone")
			case "nocommit", "slow":
				wrongID.Store(true) // never asked: it did not commit in time
			}
			return nonceFor(id), nil
		},
	}
	rec, err := Run(context.Background(), cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range rec.Candidates {
		got[c.NodeID] = true
	}
	if len(got) != 2 || !got["ok1"] || !got["ok2"] {
		t.Fatalf("candidates in the record: %v", got)
	}
	if wrongID.Load() {
		t.Fatal("a node that did not commit in time was asked to reveal")
	}

	nobody := fakeTransport{commit: func(context.Context, string) ([Size]byte, error) { return [Size]byte{}, errors.New("down") }}
	if _, err := Run(context.Background(), cfg, nobody); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("nobody committed: %v", err)
	}
	noReveal := fakeTransport{reveal: func(context.Context, string) ([Size]byte, error) { return [Size]byte{}, errors.New("down") }}
	if _, err := Run(context.Background(), cfg, noReveal); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("nobody revealed: %v", err)
	}
}

func TestRunConfig(t *testing.T) {
	for name, mut := range map[string]func(*RunConfig){
		"no phase":          func(c *RunConfig) { c.Phase = 0 },
		"empty request ID":  func(c *RunConfig) { c.RequestID = nil },
		"empty key ID":      func(c *RunConfig) { c.KeyID = "" },
		"duplicate node ID": func(c *RunConfig) { c.Candidates = []string{"a", "a"} },
	} {
		cfg, _ := runConfig(t, "a", "b")
		mut(&cfg)
		if _, err := Run(context.Background(), cfg, fakeTransport{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestExecute(t *testing.T) {
	h := func(s string) [Size]byte { var b [Size]byte; copy(b[:], s); return b }
	type res struct {
		hash   string
		failed bool
	}
	cases := []struct {
		name      string
		nodes     int
		results   map[string]res // by role: e, v, t
		ran       string         // roles asked, in order
		agreed    string         // "" for none
		verified  bool
		tieBroken bool
	}{
		{"alone", 1, map[string]res{"e": {hash: "x"}}, "e", "x", false, false},
		{"alone and failed", 1, map[string]res{"e": {failed: true}}, "e", "", false, false},
		{"executor and verifier agree", 3, map[string]res{"e": {hash: "x"}, "v": {hash: "x"}, "t": {hash: "y"}}, "ev", "x", true, false},
		{"two disagree, no third", 2, map[string]res{"e": {hash: "x"}, "v": {hash: "y"}}, "ev", "", false, false},
		{"the third sides with the verifier", 3, map[string]res{"e": {hash: "forged"}, "v": {hash: "x"}, "t": {hash: "x"}}, "evt", "x", true, true},
		{"the executor failed", 3, map[string]res{"e": {failed: true}, "v": {hash: "x"}, "t": {hash: "x"}}, "evt", "x", true, true},
		{"all three differ", 3, map[string]res{"e": {hash: "x"}, "v": {hash: "y"}, "t": {hash: "z"}}, "evt", "", false, true},
		{"failures never agree", 3, map[string]res{"e": {failed: true}, "v": {failed: true}, "t": {failed: true}}, "evt", "", false, true},
	}
	for _, c := range cases {
		rec := goldenRecord(t)
		rec.Candidates = rec.Candidates[:c.nodes]
		role := map[string]string{rec.Executor(): "e", rec.Verifier(): "v", rec.TieBreaker(): "t"}
		var asked atomic.Int32
		v := Execute(rec, func(id string) Execution {
			asked.Add(1)
			r := c.results[role[id]]
			return Execution{Hash: h(r.hash), Failed: r.failed}
		})
		ran := ""
		for _, x := range v.Executions {
			ran += role[x.NodeID]
		}
		want := Verdict{Agreed: c.agreed != "", Verified: c.verified, TieBroken: c.tieBroken}
		if c.agreed != "" {
			want.Hash = h(c.agreed)
		}
		if ran != c.ran || int(asked.Load()) != len(c.ran) || v.Agreed != want.Agreed || v.Hash != want.Hash || v.Verified != want.Verified || v.TieBroken != want.TieBroken {
			t.Errorf("%s: ran %q (%d calls), verdict %+v; want ran %q, %+v", c.name, ran, asked.Load(), v, c.ran, want)
		}
	}
}

func TestNonces(t *testing.T) {
	clk := &fakeClock{t: t0}
	var n Nonces
	n.Now = clk.now
	h, err := n.Commit([]byte("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Commit([]byte("r1")); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second commitment: %v", err)
	}
	nonce, err := n.Reveal([]byte("r1"))
	if err != nil || HashNonce(nonce) != h {
		t.Fatalf("reveal: %v", err)
	}
	if _, err := n.Reveal([]byte("r1")); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("second reveal: %v", err)
	}
	if _, err := n.Reveal([]byte("never")); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("reveal without commitment: %v", err)
	}
	if _, err := n.Commit(nil); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("empty request ID: %v", err)
	}
	h2, _ := n.Commit([]byte("r2"))
	if h2 == h {
		t.Fatal("the same nonce twice")
	}
	clk.advance(NonceTTL + time.Second)
	if _, err := n.Reveal([]byte("r2")); !errors.Is(err, ErrNoCommitment) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := n.Commit([]byte("r2")); err != nil {
		t.Fatalf("commit after expiry: %v", err)
	}
}
