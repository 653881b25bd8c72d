package election

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeRunner runs the request on the candidates: every node's result hash
// is resultOf(id) (the same for all unless a test says otherwise); nonces
// are honest unless nonce says otherwise. It counts who was asked what.
type fakeRunner struct {
	resultOf func(id string) [Size]byte
	nonce    func(id string) ([Size]byte, error)

	mu         sync.Mutex
	revealRuns []string
	runs       []string
}

func (f *fakeRunner) result(id string) Execution {
	h := sha256.Sum256([]byte("agreed result"))
	if f.resultOf != nil {
		h = f.resultOf(id)
	}
	return Execution{NodeID: id, Hash: h}
}

func (f *fakeRunner) RevealRun(_ context.Context, id string, _ []byte) ([Size]byte, Execution, error) {
	f.mu.Lock()
	f.revealRuns = append(f.revealRuns, id)
	f.mu.Unlock()
	nonce, err := nonceFor(id), error(nil)
	if f.nonce != nil {
		nonce, err = f.nonce(id)
	}
	return nonce, f.result(id), err
}

func (f *fakeRunner) Run(_ context.Context, id string) Execution {
	f.mu.Lock()
	f.runs = append(f.runs, id)
	f.mu.Unlock()
	return f.result(id)
}

func (f *fakeRunner) asked() (revealRuns, runs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.revealRuns)), slices.Clone(f.runs)
}

// honestRanking is the ranking order of ids under cfg with honest nonces.
func honestRanking(t *testing.T, cfg RunConfig) []string {
	t.Helper()
	rec, err := Run(context.Background(), cfg, fakeTransport{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range rec.Candidates {
		out = append(out, c.NodeID)
	}
	return out
}

// With honest nodes RunExecute gives Run's record and Execute's verdict
// for it, asks exactly the two nodes ranked first to reveal and run, and
// nobody to run alone.
func TestRunExecuteHonest(t *testing.T) {
	cfg, _ := runConfig(t, "n1", "n2", "n3", "n4")
	want, err := Run(context.Background(), cfg, fakeTransport{})
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{}
	rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := rec.MarshalBinary()
	b, _ := want.MarshalBinary()
	if string(a) != string(b) {
		t.Fatalf("RunExecute's record differs from Run's:\n%+v\n%+v", rec, want)
	}
	if wantV := Execute(want, func(id string) Execution { return r.result(id) }); !reflect.DeepEqual(v, wantV) {
		t.Fatalf("verdict %+v, want %+v", v, wantV)
	}
	if !v.Agreed || !v.Verified || v.TieBroken {
		t.Fatalf("verdict %+v: want agreed and verified without the tie-breaker", v)
	}
	revealRuns, runs := r.asked()
	if first := slices.Sorted(slices.Values([]string{want.Executor(), want.Verifier()})); !slices.Equal(revealRuns, first) || len(runs) != 0 {
		t.Fatalf("asked to reveal and run %v and to run %v; want %v and nobody", revealRuns, runs, first)
	}
}

// A node ranked first whose nonce does not match is left out with its
// run: the verifier moves up to executor with the result it already
// sent, the third moves up to verifier and runs alone.
func TestRunExecuteDropsRunOfBadNonce(t *testing.T) {
	cfg, _ := runConfig(t, "n1", "n2", "n3", "n4")
	order := honestRanking(t, cfg)
	liar := order[0]
	r := &fakeRunner{
		nonce: func(id string) ([Size]byte, error) {
			if id == liar {
				return nonceFor("someone else"), nil
			}
			return nonceFor(id), nil
		},
		resultOf: func(id string) [Size]byte {
			if id == liar {
				return sha256.Sum256([]byte("forged"))
			}
			return sha256.Sum256([]byte("agreed result"))
		},
	}
	rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Candidates) != 3 || rec.Executor() != order[1] || rec.Verifier() != order[2] {
		t.Fatalf("record ranks %v, want %v without %s", rec.Candidates, order, liar)
	}
	if !v.Agreed || !v.Verified || len(v.Executions) != 2 || v.Executions[0].NodeID != order[1] || v.Executions[1].NodeID != order[2] {
		t.Fatalf("verdict %+v: want %s and %s agreeing", v, order[1], order[2])
	}
	if _, runs := r.asked(); !slices.Equal(runs, []string{order[2]}) {
		t.Fatalf("ran alone: %v, want only %s", runs, order[2])
	}
}

// A node asked to reveal and run that does not answer is left out; its
// place goes to the next, who runs alone.
func TestRunExecuteUnreachableExecutor(t *testing.T) {
	cfg, _ := runConfig(t, "n1", "n2", "n3")
	order := honestRanking(t, cfg)
	r := &fakeRunner{nonce: func(id string) ([Size]byte, error) {
		if id == order[1] {
			return [Size]byte{}, errors.New("unreachable")
		}
		return nonceFor(id), nil
	}}
	rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Executor() != order[0] || rec.Verifier() != order[2] || rec.TieBreaker() != "" {
		t.Fatalf("record ranks %v, want %s then %s", rec.Candidates, order[0], order[2])
	}
	if !v.Agreed || !v.Verified {
		t.Fatalf("verdict %+v", v)
	}
	if _, runs := r.asked(); !slices.Equal(runs, []string{order[2]}) {
		t.Fatalf("ran alone: %v, want only %s", runs, order[2])
	}
}

// When the executor and the verifier disagree the tie-breaker runs alone,
// and two of three decide.
func TestRunExecuteTieBreaker(t *testing.T) {
	cfg, _ := runConfig(t, "n1", "n2", "n3")
	order := honestRanking(t, cfg)
	r := &fakeRunner{resultOf: func(id string) [Size]byte {
		if id == order[0] {
			return sha256.Sum256([]byte("forged"))
		}
		return sha256.Sum256([]byte("agreed result"))
	}}
	_, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r)
	if err != nil {
		t.Fatal(err)
	}
	if !v.TieBroken || !v.Agreed || v.Hash != sha256.Sum256([]byte("agreed result")) || len(v.Executions) != 3 {
		t.Fatalf("verdict %+v: want the verifier and the tie-breaker to outvote the executor", v)
	}
	if _, runs := r.asked(); !slices.Equal(runs, []string{order[2]}) {
		t.Fatalf("ran alone: %v, want only the tie-breaker %s", runs, order[2])
	}
}

// With RequireVerifier nobody runs unless two candidates take part.
func TestRunExecuteRequireVerifier(t *testing.T) {
	t.Run("one commitment", func(t *testing.T) {
		cfg, _ := runConfig(t, "n1", "n2")
		tr := fakeTransport{commit: func(_ context.Context, id string) ([Size]byte, error) {
			if id == "n2" {
				return [Size]byte{}, errors.New("unreachable")
			}
			return HashNonce(nonceFor(id)), nil
		}}
		r := &fakeRunner{}
		rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second, RequireVerifier: true}, tr, r)
		if err != nil {
			t.Fatal(err)
		}
		revealRuns, runs := r.asked()
		if rec.Executor() != "n1" || rec.Verifier() != "" || len(v.Executions) != 0 || len(revealRuns) != 0 || len(runs) != 0 {
			t.Fatalf("record %v, verdict %+v, asked %v and %v: want n1 alone and nothing run", rec.Candidates, v, revealRuns, runs)
		}
	})
	t.Run("the verifier does not reveal", func(t *testing.T) {
		cfg, _ := runConfig(t, "n1", "n2")
		order := honestRanking(t, cfg)
		r := &fakeRunner{nonce: func(id string) ([Size]byte, error) {
			if id == order[1] {
				return [Size]byte{}, errors.New("unreachable")
			}
			return nonceFor(id), nil
		}}
		rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second, RequireVerifier: true}, fakeTransport{}, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, runs := r.asked(); rec.Verifier() != "" || len(v.Executions) != 0 || len(runs) != 0 {
			t.Fatalf("record %v, verdict %+v, ran alone %v: want no verdict", rec.Candidates, v, runs)
		}
	})
	t.Run("without it the executor runs alone", func(t *testing.T) {
		cfg, _ := runConfig(t, "n1")
		r := &fakeRunner{}
		_, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r)
		if err != nil || !v.Agreed || v.Verified || len(v.Executions) != 1 {
			t.Fatalf("verdict %+v (%v): want n1 alone, agreed, not verified", v, err)
		}
	})
}

// Nobody committing or revealing is ErrNoCandidates; a bad config is
// ErrConfig; a run is given RunTimeout beyond the reveal phase.
func TestRunExecuteFailures(t *testing.T) {
	cfg, _ := runConfig(t, "n1", "n2")
	for name, c := range map[string]RunExecuteConfig{
		"no phase":         {RunConfig: RunConfig{RequestID: cfg.RequestID, KeyID: cfg.KeyID, Candidates: cfg.Candidates}, RunTimeout: time.Second},
		"negative timeout": {RunConfig: cfg, RunTimeout: -time.Second},
	} {
		if _, _, err := RunExecute(context.Background(), c, fakeTransport{}, &fakeRunner{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	r := &fakeRunner{nonce: func(string) ([Size]byte, error) { return [Size]byte{}, errors.New("unreachable") }}
	if _, _, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Second}, fakeTransport{}, r); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("nobody revealed: %v, want ErrNoCandidates", err)
	}

	cfg.Phase = 100 * time.Millisecond
	slow := &slowRunner{fakeRunner: &fakeRunner{}, delay: 3 * cfg.Phase}
	rec, v, err := RunExecute(context.Background(), RunExecuteConfig{RunConfig: cfg, RunTimeout: time.Minute}, fakeTransport{}, slow)
	if err != nil || len(rec.Candidates) != 2 || !v.Verified {
		t.Fatalf("runs longer than a phase within RunTimeout: record %v, verdict %+v, %v", rec.Candidates, v, err)
	}
}

// slowRunner answers RevealRun after delay (or when ctx ends).
type slowRunner struct {
	*fakeRunner
	delay time.Duration
}

func (s *slowRunner) RevealRun(ctx context.Context, id string, req []byte) ([Size]byte, Execution, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return [Size]byte{}, Execution{}, ctx.Err()
	}
	return s.fakeRunner.RevealRun(ctx, id, req)
}
