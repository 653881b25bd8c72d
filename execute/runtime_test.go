package execute_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"qledger/examples/functions/tiny"
	"qledger/execute"
	"qledger/function"
)

func TestExamples(t *testing.T) {
	cases := []struct {
		fn, in   string
		outcome  function.Outcome
		exitCode uint32
		out      string
	}{
		{"increment", `{"value":100}`, function.OutcomeOK, 0, `{"value":101}`},
		{"increment", `{"value":-1}`, function.OutcomeOK, 0, `{"value":0}`},
		{"increment", `{"value":"x"}`, function.OutcomeBadExit, 1, ``},
		{"increment", `{"value":9223372036854775807}`, function.OutcomeBadExit, 1, ``},
		{"tinyinc", `{"value":100}`, function.OutcomeOK, 0, `{"value":101}`},
		{"tinyinc", `{"value":99}`, function.OutcomeOK, 0, `{"value":100}`},
		{"tinyinc", `9`, function.OutcomeOK, 0, `10`},
		{"tinyinc", `{"value":1299, "n": 0}`, function.OutcomeOK, 0, `{"value":1299, "n": 1}`},
		{"tinyinc", `no digits`, function.OutcomeBadExit, 2, ``},
		{"echo", `hello`, function.OutcomeOK, 0, `hello`},
		{"echo", ``, function.OutcomeOK, 0, ``},
		{"echo", strings.Repeat("a", tiny.MaxInput), function.OutcomeOK, 0, strings.Repeat("a", tiny.MaxInput)},
		{"echo", strings.Repeat("a", tiny.MaxInput+1), function.OutcomeBadExit, 1, ``},
		{"transform",
			`{"orders":[{"id":"a1","customer":"bob","amount_cents":1250,"currency":"eur"},` +
				`{"id":"a2","customer":"ada","amount_cents":300,"currency":"USD"},` +
				`{"id":"a3","customer":"bob","amount_cents":5000,"currency":"EUR"}]}`,
			function.OutcomeOK, 0,
			`{"count":3,"customers":["ada","bob"],"largest":{"id":"a3","amount_cents":5000,"currency":"EUR"},"totals":{"EUR":6250,"USD":300}}`},
		{"transform", `{"orders":[{"id":"a1"}]}`, function.OutcomeBadExit, 1, ``},
		{"digest", `abc`, function.OutcomeOK, 0,
			`{"bytes":3,"crc32c":"364b3fb7",` +
				`"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",` +
				`"sha512":"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"}`},
		{"exit3", ``, function.OutcomeBadExit, 3, "failing\n"},
		{"trap", ``, function.OutcomeTrap, 0, ``},
		{"noisy", ``, function.OutcomeOK, 0, "ok\n"},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			spec := deploy(t, shared, c.fn, nil)
			res := invoke(t, spec, 1, c.in)
			if res.Outcome != c.outcome || res.ExitCode != c.exitCode || string(res.Stdout) != c.out {
				t.Fatalf("%s(%q) = %s/%d %q (stderr %q, %s), want %s/%d %q",
					c.fn, c.in, res.Outcome, res.ExitCode, res.Stdout, res.Stderr, res.Detail, c.outcome, c.exitCode, c.out)
			}
			if res.Hash != function.ResultHash(res.Outcome, res.ExitCode, res.Stdout) {
				t.Fatal("Result.Hash is not ResultHash of the result")
			}
			if (res.Err() == nil) != (c.outcome == function.OutcomeOK) || res.OK() != (c.outcome == function.OutcomeOK) {
				t.Fatalf("Err() = %v for %s", res.Err(), res.Outcome)
			}
		})
	}
}

func TestOutcomeErrors(t *testing.T) {
	res := invoke(t, deploy(t, shared, "trap", nil), 1, "")
	if !errors.Is(res.Err(), execute.ErrTrap) || !strings.Contains(res.Detail, "unreachable") {
		t.Fatalf("trap: %v (%q)", res.Err(), res.Detail)
	}
	res = invoke(t, deploy(t, shared, "exit3", nil), 1, "")
	if !errors.Is(res.Err(), execute.ErrBadExit) || res.ExitCode != 3 {
		t.Fatalf("exit3: %v", res.Err())
	}
	// A Go function reports bad input on stderr and exits 1.
	res = invoke(t, deploy(t, shared, "increment", nil), 1, "{")
	if !errors.Is(res.Err(), execute.ErrBadExit) || !strings.Contains(string(res.Stderr), "increment: bad input") {
		t.Fatalf("increment: %v, stderr %q", res.Err(), res.Stderr)
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name, fn, in string
		edit         func(*function.Spec)
		want         function.Outcome
		err          error
	}{
		{"timeout on an infinite loop", "loop", "", func(s *function.Spec) { s.Timeout = 100 * time.Millisecond }, function.OutcomeTimeout, execute.ErrTimeout},
		{"memory hog (tiny)", "memhog", "", func(s *function.Spec) { s.MemoryPages = 64 }, function.OutcomeMemoryLimit, execute.ErrMemoryLimit},
		{"memory hog (Go runtime)", "gomemhog", "", func(s *function.Spec) { s.MemoryPages = 128 }, function.OutcomeMemoryLimit, execute.ErrMemoryLimit},
		{"output flood", "flood", "", func(s *function.Spec) { s.MaxOutputBytes = 100_000 }, function.OutcomeOutputLimit, execute.ErrOutputLimit},
		{"echo over the output limit", "echo", strings.Repeat("x", 101), func(s *function.Spec) { s.MaxOutputBytes = 100 }, function.OutcomeOutputLimit, execute.ErrOutputLimit},
		{"no stdout allowed", "increment", `{"value":1}`, func(s *function.Spec) { s.MaxOutputBytes = 0 }, function.OutcomeOutputLimit, execute.ErrOutputLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := deploy(t, shared, c.fn, c.edit)
			res := invoke(t, spec, 1, c.in)
			if res.Outcome != c.want || !errors.Is(res.Err(), c.err) {
				t.Fatalf("outcome %s (%v), want %s", res.Outcome, res.Err(), c.want)
			}
			if res.Stdout != nil || res.ExitCode != 0 {
				t.Fatalf("a %s result carries exit code %d and stdout %q", res.Outcome, res.ExitCode, res.Stdout)
			}
			if res.Detail == "" {
				t.Fatal("no detail")
			}
			t.Logf("%s: %s after %s", c.fn, res.Detail, res.Duration)
		})
	}
	// The runtime keeps serving after every limit hit.
	if res := invoke(t, deploy(t, shared, "tinyinc", nil), 1, "41"); string(res.Stdout) != "42" {
		t.Fatalf("after the limits: %q", res.Stdout)
	}
}

func TestStderrTruncation(t *testing.T) {
	for _, max := range []uint32{0, 1000, function.MaxStderrLimit} {
		spec := deploy(t, shared, "noisy", func(s *function.Spec) { s.MaxStderrBytes = max })
		res := invoke(t, spec, 1, "")
		if !res.OK() || string(res.Stdout) != "ok\n" {
			t.Fatalf("max %d: %s %q", max, res.Outcome, res.Stdout)
		}
		wantLen := min(int(max), 1<<20)
		if len(res.Stderr) != wantLen || res.StderrTruncated != (max < 1<<20) {
			t.Fatalf("max %d: kept %d bytes, truncated %v", max, len(res.Stderr), res.StderrTruncated)
		}
		if strings.Trim(string(res.Stderr), "e") != "" {
			t.Fatalf("stderr content %q", res.Stderr[:10])
		}
	}
}

func TestDeployErrors(t *testing.T) {
	ctx := context.Background()
	dep := func(name, version string, code []byte, edit func(*function.Spec)) function.Deployment {
		s := function.DefaultSpec(name, version, code)
		if edit != nil {
			edit(&s)
		}
		return function.Deployment{Spec: s, Code: code}
	}
	cases := []struct {
		name string
		d    function.Deployment
		want error
		msg  string
	}{
		{"garbage bytes", dep("garbage", "1", []byte("this is not wasm"), nil), execute.ErrInvalidModule, "bad magic"},
		{"truncated module", dep("cut", "1", code(t, "tinyinc")[:100], nil), execute.ErrInvalidModule, ""},
		{"empty module (no _start)", dep("empty", "1", []byte("\x00asm\x01\x00\x00\x00"), nil), execute.ErrInvalidModule, "_start"},
		{"custom import (tiny)", dep("tinyclock", "1", code(t, "tinyclock"), nil), execute.ErrUnsupportedImport, "env.host_time"},
		{"custom import (Go)", dep("hostclock", "1", code(t, "hostclock"), nil), execute.ErrUnsupportedImport, "env.host_time"},
		{"pages below the module's minimum", dep("increment", "1", code(t, "increment"), func(s *function.Spec) { s.MemoryPages = 16 }), execute.ErrInvalidSpec, "spec allows 16"},
		{"code hash mismatch", dep("x", "1", code(t, "echo"), func(s *function.Spec) { s.CodeHash[0] ^= 1 }), execute.ErrCodeHash, ""},
		{"invalid spec", dep("Bad Name", "1", code(t, "echo"), nil), execute.ErrInvalidSpec, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := shared.Deploy(ctx, c.d)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Deploy = %v, want %v containing %q", err, c.want, c.msg)
			}
			if c.want != execute.ErrInvalidSpec && c.want != execute.ErrCodeHash && shared.Deployed(c.d.Spec.CodeHash) {
				t.Fatal("a refused module counts as deployed")
			}
		})
	}
}

func TestInvokeErrors(t *testing.T) {
	ctx := context.Background()
	spec := deploy(t, shared, "echo", nil)

	unknown := spec
	unknown.CodeHash = sha256.Sum256([]byte("never deployed"))
	if _, err := shared.Invoke(ctx, unknown, requestID(1), nil); !errors.Is(err, execute.ErrUnknownCode) {
		t.Fatalf("unknown code: %v", err)
	}
	bad := spec
	bad.Timeout = 0
	if _, err := shared.Invoke(ctx, bad, requestID(1), nil); !errors.Is(err, execute.ErrInvalidSpec) {
		t.Fatalf("invalid spec: %v", err)
	}
	if _, err := shared.Invoke(ctx, spec, requestID(1), make([]byte, function.MaxInputBytes+1)); !errors.Is(err, execute.ErrInputTooLarge) {
		t.Fatalf("large input: %v", err)
	}
	// Invoking deployed code under a spec with fewer pages than the
	// module starts with is the memory-limit outcome, not a crash.
	small := deploy(t, shared, "increment", nil)
	small.MemoryPages = 16
	res, err := shared.Invoke(ctx, small, requestID(1), nil)
	if err != nil || res.Outcome != function.OutcomeMemoryLimit {
		t.Fatalf("small spec: %v %v", res.Outcome, err)
	}
}

func TestCanceledByCaller(t *testing.T) {
	spec := deploy(t, shared, "loop", func(s *function.Spec) { s.Timeout = 10 * time.Second })

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := shared.Invoke(ctx, spec, requestID(1), nil); !errors.Is(err, execute.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	// A caller deadline shorter than the spec's timeout is not a timeout
	// outcome either: the function was not given its budget.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := shared.Invoke(ctx, spec, requestID(1), nil); !errors.Is(err, execute.ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}
}

func TestConcurrentDeployAndInvoke(t *testing.T) {
	rt, err := execute.New(execute.Config{CompileWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s := specFor(t, "tinyinc", nil)
	d := function.Deployment{Spec: s, Code: code(t, "tinyinc")}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	compiled := 0
	hashes := map[[32]byte]int{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := rt.Deploy(context.Background(), d)
			if err != nil {
				t.Error(err)
				return
			}
			res, err := rt.Invoke(context.Background(), s, requestID(7), []byte(`{"value":100}`))
			if err != nil || !res.OK() {
				t.Errorf("invoke: %v %v", res.Outcome, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if info.Compiled {
				compiled++
			}
			hashes[res.Hash]++
		}()
	}
	wg.Wait()
	if !rt.Deployed(s.CodeHash) {
		t.Fatal("Deployed = false after Deploy")
	}
	if compiled != 1 || len(hashes) != 1 {
		t.Fatalf("compiled %d times, %d distinct hashes", compiled, len(hashes))
	}
}

func TestClose(t *testing.T) {
	rt, err := execute.New(execute.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The call's own timeout is far beyond the test's deadline: only Close
	// can end the loop in time.
	spec := deploy(t, rt, "loop", func(s *function.Spec) { s.Timeout = function.MaxTimeout })
	done := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(context.Background(), spec, requestID(1), nil)
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); rt.Running() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the function's code")
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, execute.ErrClosed) {
		t.Fatalf("running call: %v, want ErrClosed", err)
	}
	if _, err := rt.Invoke(context.Background(), spec, requestID(1), nil); !errors.Is(err, execute.ErrClosed) {
		t.Fatalf("Invoke after Close: %v", err)
	}
	if _, err := rt.Deploy(context.Background(), function.Deployment{Spec: spec, Code: code(t, "loop")}); !errors.Is(err, execute.ErrClosed) {
		t.Fatalf("Deploy after Close: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// FuzzDeployInvoke feeds arbitrary bytes (seeded with the tiny examples) to
// Deploy and, when they deploy, to Invoke: nothing may panic, refusals are
// named errors, and every run ends in a defined outcome.
func FuzzDeployInvoke(f *testing.F) {
	for _, name := range []string{"tinyinc", "echo", "trap", "exit3", "sources", "memhog"} {
		c, _ := tiny.Module(name)
		f.Add(c, []byte("41"))
	}
	rt, err := execute.New(execute.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close() })
	f.Fuzz(func(t *testing.T, module, input []byte) {
		if len(module) == 0 {
			return
		}
		s := function.DefaultSpec("fuzz", "1", module)
		s.Timeout, s.MemoryPages, s.MaxOutputBytes = 20*time.Millisecond, 16, 1024
		_, err := rt.Deploy(context.Background(), function.Deployment{Spec: s, Code: module})
		if err != nil {
			if !errors.Is(err, execute.ErrInvalidModule) && !errors.Is(err, execute.ErrUnsupportedImport) && !errors.Is(err, execute.ErrInvalidSpec) {
				t.Fatalf("unnamed deploy error: %v", err)
			}
			return
		}
		res, err := rt.Invoke(context.Background(), s, requestID(1), input)
		if err != nil || !res.Outcome.Valid() {
			t.Fatalf("invoke: %v, %v", res.Outcome, err)
		}
	})
}
