package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"qledger/server"
)

// benchShrink are the flags appended to each documented qledger bench
// command line, by subcommand ("" is qledger bench itself), so that the
// smoke test runs it in seconds. Later flags override earlier ones, so the
// documented flags are kept unless shrunk here. Every bench subcommand
// must have an entry: TestBenchCommandsRun fails on one without.
var benchShrink = map[string][]string{
	"":           {"--duration", "100ms", "--warmup", "20ms", "--clients", "1", "--payloads", "16", "--groups", "2", "--replicas", "2"},
	"sharing":    {"--quick"},
	"invoke":     {"--duration", "100ms", "--clients", "2"},
	"tls":        {"--duration", "100ms", "--clients", "4"},
	"membership": {"--rounds", "1", "--log-level", "warn"},
	"failover":   {"--rounds", "1", "--clients", "1", "--pause", "1s", "--loopback-timing", "--log-level", "warn"},
	"api":        {"--duration", "2s", "--warmup", "50ms", "--clients", "4", "--json"},
	"growth":     {"--to", "300", "--steps", "2", "--clients", "4", "--reads", "10", "--log-level", "warn"},
}

// benchStandIns stand for the flags TestBenchCommandsRun appends to a
// subcommand's every line (a fresh directory, the built binary, the test
// cluster's address and certificates), so that effectiveInvocation sees
// the values the documented lines would have run with.
var benchStandIns = map[string][]string{
	"sharing":    {"--out", "OUT"},
	"membership": {"--binary", "BIN"},
	"failover":   {"--binary", "BIN"},
	"growth":     {"--binary", "BIN"},
	"api":        {"--addr", "ADDR", "--ca", "CA", "--cert", "CERT", "--cert-key", "KEY"},
}

// effectiveInvocation is what args amount to once parsed: the command and
// every flag's value, defaults included, and the positional arguments.
// Documented lines that differ only in values the shrink flags override
// (sizes, durations) are the same invocation, run once.
func effectiveInvocation(args []string) (string, error) {
	cmd, rest, err := (&app{}).rootCmd().Find(args)
	if err != nil {
		return "", err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(cmd.CommandPath())
	cmd.Flags().VisitAll(func(f *pflag.Flag) { fmt.Fprintf(&b, " --%s=%s", f.Name, f.Value) })
	fmt.Fprintf(&b, " %q", cmd.Flags().Args())
	return b.String(), nil
}

// benchCommandLine finds `qledger bench ...` in a Makefile recipe
// ($(BIN)/qledger bench ...).
var benchCommandLine = regexp.MustCompile(`\$\(BIN\)/qledger (bench.*)`)

// TestBenchCommandsRun runs every qledger bench command line that
// docs/BENCHMARKS.md and the Makefile's bench target tell users to run,
// with a freshly built qledger and its durations shrunk (benchShrink),
// and fails on any error: a benchmark cannot rot unseen. Every bench
// subcommand must appear there at least once. It checks what the reports
// say ran, never their timings. (make test runs it in the pass without
// -race: it builds and runs the real binary, whose code the race pass
// covers through the other tests.)
func TestBenchCommandsRun(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds qledger and runs every benchmark; make test runs it without -race")
	}
	lines := documentedBenchLines(t)
	var seen []string
	for _, words := range lines {
		seen = append(seen, benchSub(words))
	}
	for _, sub := range append([]string{""}, benchSubcommands()...) {
		if !slices.Contains(seen, sub) {
			t.Errorf("qledger bench %s is in neither docs/BENCHMARKS.md nor make bench", sub)
		}
		if _, ok := benchShrink[sub]; !ok {
			t.Errorf("qledger bench %s has no benchShrink entry", sub)
		}
	}
	bin := filepath.Join(t.TempDir(), "qledger")
	if out, err := exec.Command("go", "build", "-o", bin, "qledger/cmd/qledger").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ran := map[string]string{} // effective invocation -> the line that ran it
	for _, words := range lines {
		sub := benchSub(words)
		t.Run(strings.Join(words, " "), func(t *testing.T) {
			args := append(slices.Clone(words), benchShrink[sub]...)
			key, err := effectiveInvocation(append(slices.Clone(args), benchStandIns[sub]...))
			if err != nil {
				t.Fatalf("qledger %s does not parse: %v", strings.Join(args, " "), err)
			}
			if first, ok := ran[key]; ok {
				t.Skipf("shrunk, the same invocation as %q, which ran", first)
			}
			ran[key] = strings.Join(words, " ")
			switch sub {
			case "sharing":
				args = append(args, "--out", t.TempDir())
			case "membership", "failover", "growth":
				args = append(args, "--binary", bin)
			case "api":
				args = append(args, apiTarget(t)...)
			}
			out := runBench(t, bin, args)
			checkBenchOutput(t, sub, out, slices.Contains(args, "stale"))
		})
	}
}

// documentedBenchLines are the qledger bench command lines of
// docs/BENCHMARKS.md and of the Makefile's recipes, as words.
func documentedBenchLines(t *testing.T) [][]string {
	root := (&app{}).rootCmd()
	var out [][]string
	for _, line := range documentedCommands(t, "../../docs/BENCHMARKS.md") {
		words := placeholders(root, shellWords(placeholder.ReplaceAllString(line, "X")))
		if len(words) > 0 && words[0] == "bench" {
			out = append(out, words)
		}
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mk), "\n") {
		if m := benchCommandLine.FindStringSubmatch(l); m != nil {
			out = append(out, shellWords(m[1]))
		}
	}
	if len(out) < 6 {
		t.Fatalf("found %d qledger bench command lines; the extraction is broken", len(out))
	}
	return out
}

// benchSub is the bench subcommand words run ("" for bench itself).
func benchSub(words []string) string {
	if len(words) > 1 && !strings.HasPrefix(words[1], "-") {
		return words[1]
	}
	return ""
}

func benchSubcommands() []string {
	var subs []string
	for _, c := range (&app{}).benchCmd().Commands() {
		subs = append(subs, c.Name())
	}
	return subs
}

// apiTarget starts an embedded 1 × 3 cluster with a CA for qledger bench
// api and returns the flags that point at all three nodes as a submitter.
func apiTarget(t *testing.T) []string {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := server.DevCA(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir, Groups: 1, Replicas: 3, CA: ca, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Close() })
	return []string{"--addr", strings.Join(lc.Addrs, ","), "--ca", filepath.Join(tlsDir, "ca.pem"),
		"--cert", filepath.Join(tlsDir, "submitter.pem"), "--cert-key", filepath.Join(tlsDir, "submitter-key.pem")}
}

// runBench runs bin with args and returns its stdout; it fails the test
// on a non-zero exit, showing stderr.
func runBench(t *testing.T, bin string, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("qledger %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// checkBenchOutput checks that a bench report says what ran and counts
// no failed operation; with staleReads (a bench api line reading at level
// stale), reads that did not find a write yet are allowed.
func checkBenchOutput(t *testing.T, sub, out string, staleReads bool) {
	t.Helper()
	if sub == "api" {
		var rep struct {
			Total  struct{ OK int } `json:"total"`
			Errors map[string]int   `json:"errors"`
		}
		err := json.Unmarshal([]byte(out), &rep)
		if staleReads {
			// A stale read on a follower of a write acknowledged moments
			// before may not find it yet (documented); nothing else may fail.
			delete(rep.Errors, "not_found")
		}
		if err != nil || rep.Total.OK == 0 || len(rep.Errors) > 0 {
			t.Fatalf("bench api report (%v):\n%s", err, out)
		}
		return
	}
	want := map[string]string{"": "bare raft (baseline)", "sharing": "Targets at", "invoke": "verified invoke", "tls": "TLS 1.3 handshake",
		"membership": "voter SIGKILLed", "failover": "client gap", "growth": "SIGKILL"}[sub]
	if !strings.Contains(out, want) {
		t.Fatalf("bench %s output lacks %q:\n%s", sub, want, out)
	}
	if strings.Contains(out, "errors)") {
		t.Fatalf("bench %s counted errors:\n%s", sub, out)
	}
	if sub != "failover" {
		return
	}
	failed := failedWrites.FindAllStringSubmatch(out, -1)
	for _, m := range failed {
		if m[1] != "0" {
			t.Fatalf("bench failover counted failed writes:\n%s", out)
		}
	}
	if cells := markdownColumn(out, "failed"); len(failed)+len(cells) == 0 || slices.ContainsFunc(cells, func(c string) bool { return c != "0" }) {
		t.Fatalf("bench failover: no round reported, or failed writes:\n%s", out)
	}
}

// failedWrites is a failover round's failed writes in a text report.
var failedWrites = regexp.MustCompile(`writes, (\d+) failed`)

// markdownColumn is the cells of the column named name in the Markdown
// tables of out.
func markdownColumn(out, name string) []string {
	var cells []string
	col := -1
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			col = -1
			continue
		}
		row := strings.Split(strings.Trim(l, "|"), "|")
		for i := range row {
			row[i] = strings.TrimSpace(row[i])
		}
		switch i := slices.Index(row, name); {
		case col < 0 && i >= 0:
			col = i
		case col >= 0 && col < len(row) && !strings.HasPrefix(row[col], "---"):
			cells = append(cells, row[col])
		}
	}
	return cells
}

// TestEffectiveInvocation: lines that differ only in values a later flag
// overrides are one invocation; a flag that changes what runs is not.
func TestEffectiveInvocation(t *testing.T) {
	key := func(line string) string {
		k, err := effectiveInvocation(strings.Fields(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return k
	}
	a := key("bench growth --to 1000000 --steps 4 --markdown --to 300 --steps 2")
	if b := key("bench growth --to 3000000 --steps 5 --markdown --to 300 --steps 2"); a != b {
		t.Fatalf("overridden sizes made two invocations:\n%s\n%s", a, b)
	}
	if b := key("bench growth --reference-snapshots --markdown --to 300 --steps 2"); a != b {
		t.Fatalf("a flag given its default made another invocation:\n%s\n%s", a, b)
	}
	if b := key("bench growth --reference-snapshots=false --markdown --to 300 --steps 2"); a == b {
		t.Fatal("--reference-snapshots=false was taken for the same invocation")
	}
	if b := key("bench invoke --markdown"); a == b {
		t.Fatal("another subcommand was taken for the same invocation")
	}
	if _, err := effectiveInvocation([]string{"bench", "growth", "--no-such-flag"}); err == nil {
		t.Fatal("an unknown flag parsed")
	}
}
