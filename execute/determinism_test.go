package execute_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"qledger/examples/functions"
	"qledger/execute"
	"qledger/function"
)

type detCase struct {
	input string
	edit  func(*function.Spec)
}

// detCases holds one request per example function. Every example that
// deploys must be listed (the test fails otherwise), so a new example is
// covered by the determinism test from the start.
var detCases = map[string]detCase{
	"increment": {`{"value":100}`, nil},
	"transform": {`{"orders":[{"id":"a1","customer":"bob","amount_cents":1250,"currency":"eur"},{"id":"a2","customer":"ada","amount_cents":300,"currency":"USD"}]}`, nil},
	"digest":    {strings.Repeat("qledger ", 1000), nil},
	"clockrand": {``, nil},
	"gomemhog":  {``, func(s *function.Spec) { s.MemoryPages = 128 }},
	"tinyinc":   {`{"value":199}`, nil},
	"echo":      {`echo me`, nil},
	"sources":   {``, nil},
	"loop":      {``, func(s *function.Spec) { s.Timeout = 50 * time.Millisecond }},
	"memhog":    {``, func(s *function.Spec) { s.MemoryPages = 64 }},
	"flood":     {``, func(s *function.Spec) { s.MaxOutputBytes = 100_000 }},
	"noisy":     {``, func(s *function.Spec) { s.MaxStderrBytes = 4096 }},
	"trap":      {``, nil},
	"exit3":     {``, nil},
}

// undeployable examples are refused at deploy time (see TestDeployErrors).
var undeployable = map[string]bool{"hostclock": true, "tinyclock": true}

// TestDeterminism executes the same request twice on one Runtime and once
// on a second Runtime with its own compilation cache, for every example,
// and requires identical results (hash, outcome, exit code, stdout and the
// kept stderr).
func TestDeterminism(t *testing.T) {
	second, err := execute.New(execute.Config{CacheDir: secondCacheDir(), CompileWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	for _, name := range functions.Names() {
		if undeployable[name] {
			continue
		}
		c, ok := detCases[name]
		if !ok {
			t.Errorf("example %q has no determinism case", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			spec := deploy(t, shared, name, c.edit)
			deploy(t, second, name, c.edit)
			rid := requestID(42)
			var results []execute.Result
			for _, rt := range []*execute.Runtime{shared, shared, second} {
				res, err := rt.Invoke(context.Background(), spec, rid, []byte(c.input))
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, res)
			}
			a := results[0]
			for i, b := range results[1:] {
				if a.Hash != b.Hash || a.Outcome != b.Outcome || a.ExitCode != b.ExitCode ||
					!bytes.Equal(a.Stdout, b.Stdout) || !bytes.Equal(a.Stderr, b.Stderr) {
					t.Fatalf("execution %d differs:\n%s %d %q %q\n%s %d %q %q", i+2,
						a.Outcome, a.ExitCode, a.Stdout, a.Stderr, b.Outcome, b.ExitCode, b.Stdout, b.Stderr)
				}
			}
			t.Logf("%s: %s %x", name, a.Outcome, a.Hash[:8])
		})
	}
}

type clockrandReport struct {
	WallUnixNano int64    `json:"wall_unix_nano"`
	SleptNanos   int64    `json:"slept_nanos"`
	Random       string   `json:"random"`
	MathRand     uint64   `json:"math_rand"`
	Args         []string `json:"args"`
	Env          []string `json:"env"`
	ListRoot     string   `json:"list_root"`
}

// TestRequestDerivedSources shows that the clock and the random source a
// function sees come from the request ID: the same ID gives the same
// values, another ID other values, and the rest of the host is invisible.
func TestRequestDerivedSources(t *testing.T) {
	spec := deploy(t, shared, "clockrand", nil)
	read := func(rid byte) clockrandReport {
		res := invoke(t, spec, rid, "")
		if !res.OK() {
			t.Fatalf("clockrand: %v", res.Err())
		}
		var r clockrandReport
		if err := json.Unmarshal(res.Stdout, &r); err != nil {
			t.Fatalf("%v: %s", err, res.Stdout)
		}
		return r
	}
	a, again, b := read(1), read(1), read(2)
	if a.WallUnixNano != again.WallUnixNano || a.Random != again.Random || a.MathRand != again.MathRand {
		t.Fatalf("same request, different sources:\n%+v\n%+v", a, again)
	}
	if a.WallUnixNano == b.WallUnixNano || a.Random == b.Random || a.MathRand == b.MathRand {
		t.Fatalf("different requests, same sources:\n%+v\n%+v", a, b)
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []clockrandReport{a, b} {
		if w := time.Unix(0, r.WallUnixNano); w.Before(day) || w.After(day.Add(25*time.Hour)) {
			t.Errorf("wall clock %s outside the documented day", w)
		}
		// time.Sleep(time.Hour) returns at once but the clock moves on.
		if r.SleptNanos < int64(time.Hour) || r.SleptNanos > int64(time.Hour+time.Second) {
			t.Errorf("slept %d ns", r.SleptNanos)
		}
		if len(r.Args) != 1 || r.Args[0] != "clockrand" || len(r.Env) != 0 || !strings.HasPrefix(r.ListRoot, "error") {
			t.Errorf("sandbox leaks: args %q env %q list / %q", r.Args, r.Env, r.ListRoot)
		}
	}

	// The same with the tiny module, which reads WASI clocks and random_get
	// directly.
	tspec := deploy(t, shared, "sources", nil)
	ta, tagain, tb := invoke(t, tspec, 1, ""), invoke(t, tspec, 1, ""), invoke(t, tspec, 2, "")
	if len(ta.Stdout) != 32 || !bytes.Equal(ta.Stdout, tagain.Stdout) {
		t.Fatalf("sources: %x vs %x", ta.Stdout, tagain.Stdout)
	}
	for _, part := range [][2]int{{0, 8}, {8, 16}, {16, 32}} {
		if bytes.Equal(ta.Stdout[part[0]:part[1]], tb.Stdout[part[0]:part[1]]) {
			t.Fatalf("sources bytes %v equal across requests: %x", part, ta.Stdout)
		}
	}
}

// TestHostSourcesAreNotDeterministic is the contrast: the same module under
// a wazero runtime given the host's clock and crypto/rand prints something
// new each time, which a verifier could never reproduce.
func TestHostSourcesAreNotDeterministic(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	run := func() []byte {
		var out bytes.Buffer
		cfg := wazero.NewModuleConfig().WithName("").WithStdout(&out).
			WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
		mod, err := r.InstantiateWithConfig(ctx, code(t, "sources"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		mod.Close(ctx)
		return out.Bytes()
	}
	a, b := run(), run()
	if len(a) != 32 || bytes.Equal(a[16:], b[16:]) || binary.LittleEndian.Uint64(a[8:]) == binary.LittleEndian.Uint64(b[8:]) {
		t.Fatalf("host sources repeated: %x %x", a, b)
	}
}
