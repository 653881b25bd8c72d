package election

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newTestCollector(t *testing.T, expected ...string) (*Collector, *fakeClock, [Size]byte) {
	t.Helper()
	key, err := DeriveKey(testSessionKey, []byte("req-collect"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	c, err := NewCollector(CollectorConfig{
		RequestID:      []byte("req-collect"),
		KeyID:          "key-1",
		Key:            key,
		Expected:       expected,
		CommitDeadline: t0.Add(100 * time.Millisecond),
		RevealDeadline: t0.Add(time.Second),
		Now:            clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, clk, key
}

func nonceFor(id string) [Size]byte {
	var n [Size]byte
	copy(n[:], "nonce of "+id)
	return n
}

func TestCollectorCommitReveal(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	c, _, key := newTestCollector(t, nodes...)
	select {
	case <-c.AllCommitted():
		t.Fatal("all committed before any commitment")
	default:
	}
	if err := c.Reveal("n1", nonceFor("n1")); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("reveal before seal: %v", err)
	}
	if _, _, err := c.Record(); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("record before seal: %v", err)
	}
	for _, id := range nodes {
		if err := c.Commit(id, HashNonce(nonceFor(id))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.AllCommitted():
	default:
		t.Fatal("AllCommitted not closed")
	}
	ranking, err := c.Seal()
	if err != nil {
		t.Fatal(err)
	}
	var reveals []Reveal
	for _, id := range nodes {
		reveals = append(reveals, Reveal{NodeID: id, Nonce: nonceFor(id)})
	}
	want, err := Elect(key, "key-1", []byte("req-collect"), reveals)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ranking {
		if ranking[i].NodeID != want.Candidates[i].NodeID || ranking[i].Stake != want.Candidates[i].Stake {
			t.Fatalf("sealed ranking differs from Elect at %d", i)
		}
	}
	// The winner can start before any nonce is revealed; nonces follow.
	if err := c.Reveal("n1", nonceFor("n2")); !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("wrong nonce: %v", err)
	}
	for _, id := range nodes {
		if err := c.Reveal(id, nonceFor(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Reveal("n1", nonceFor("n1")); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second reveal: %v", err)
	}
	rec, missing, err := c.Record()
	if err != nil || len(missing) != 0 {
		t.Fatalf("record: %v, missing %v", err, missing)
	}
	if err := VerifyWithSessionKey(rec, testSessionKey); err != nil {
		t.Fatal(err)
	}
	a, _ := rec.MarshalBinary()
	b, _ := want.MarshalBinary()
	if string(a) != string(b) {
		t.Fatal("collector record differs from Elect's")
	}
}

func TestCollectorRefusals(t *testing.T) {
	c, clk, _ := newTestCollector(t, "n1", "n2", "n3")
	h := HashNonce(nonceFor("n1"))
	if err := c.Commit("n1", h); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit("n1", h); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate commitment: %v", err)
	}
	if err := c.Commit("intruder", h); !errors.Is(err, ErrUnexpectedNode) {
		t.Fatalf("unexpected node: %v", err)
	}
	if err := c.Commit("", h); !errors.Is(err, ErrInvalidNodeID) {
		t.Fatalf("empty node ID: %v", err)
	}
	if err := c.Commit("n2", HashNonce(nonceFor("n2"))); err != nil {
		t.Fatal(err)
	}
	clk.advance(100 * time.Millisecond) // exactly the commit deadline
	if err := c.Commit("n3", HashNonce(nonceFor("n3"))); !errors.Is(err, ErrLate) {
		t.Fatalf("late commitment: %v", err)
	}
	ranking, err := c.Seal()
	if err != nil || len(ranking) != 2 {
		t.Fatalf("seal: %v, %d candidates", err, len(ranking))
	}
	if err := c.Reveal("n3", nonceFor("n3")); !errors.Is(err, ErrUnknownCandidate) {
		t.Fatalf("reveal without commitment: %v", err)
	}
	if err := c.Reveal("n1", nonceFor("n1")); err != nil {
		t.Fatal(err)
	}
	clk.advance(900 * time.Millisecond) // exactly the reveal deadline
	if err := c.Reveal("n2", nonceFor("n2")); !errors.Is(err, ErrLate) {
		t.Fatalf("late reveal: %v", err)
	}
	rec, missing, err := c.Record()
	if err != nil || len(rec.Candidates) != 1 || rec.Executor() != "n1" || len(missing) != 1 || missing[0] != "n2" {
		t.Fatalf("record %+v, missing %v, %v", rec, missing, err)
	}
	if err := Verify(rec); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorSealedCommitIsLate(t *testing.T) {
	c, _, _ := newTestCollector(t)
	if _, err := c.Seal(); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("seal with nothing: %v", err)
	}
	if err := c.Commit("n1", HashNonce(nonceFor("n1"))); err != nil {
		t.Fatalf("commit after a failed seal: %v", err)
	}
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit("n2", HashNonce(nonceFor("n2"))); !errors.Is(err, ErrLate) {
		t.Fatalf("commit after seal: %v", err)
	}
	if _, _, err := c.Record(); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("record with no reveals: %v", err)
	}
}

func TestCollectorConfig(t *testing.T) {
	good := CollectorConfig{RequestID: []byte("r"), KeyID: "k", CommitDeadline: t0, RevealDeadline: t0.Add(time.Second)}
	cases := []struct {
		name string
		edit func(*CollectorConfig)
	}{
		{"no request ID", func(c *CollectorConfig) { c.RequestID = nil }},
		{"no key ID", func(c *CollectorConfig) { c.KeyID = "" }},
		{"no commit deadline", func(c *CollectorConfig) { c.CommitDeadline = time.Time{} }},
		{"reveal before commit", func(c *CollectorConfig) { c.RevealDeadline = t0 }},
		{"duplicate expected", func(c *CollectorConfig) { c.Expected = []string{"a", "a"} }},
		{"invalid expected", func(c *CollectorConfig) { c.Expected = []string{""} }},
	}
	if _, err := NewCollector(good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		cfg := good
		tc.edit(&cfg)
		if _, err := NewCollector(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestCollectorConcurrent(t *testing.T) {
	const n = 64
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("node-%02d", i))
	}
	c, _, _ := newTestCollector(t, ids...)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Commit(id, HashNonce(nonceFor(id))); err != nil {
				t.Error(err)
			}
		}()
	}
	<-c.AllCommitted()
	wg.Wait()
	if _, err := c.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Reveal(id, nonceFor(id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rec, missing, err := c.Record()
	if err != nil || len(missing) != 0 || len(rec.Candidates) != n {
		t.Fatalf("%v %v %d", err, missing, len(rec.Candidates))
	}
	if err := VerifyWithSessionKey(rec, testSessionKey); err != nil {
		t.Fatal(err)
	}
}
