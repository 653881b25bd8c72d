package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"qledger/sharing"
)

// ran is what one in-process run of the command line left behind.
type ran struct {
	code           int
	stdout, stderr string
}

// cli runs the qledger command line in this process.
func cli(t *testing.T, args ...string) ran {
	t.Helper()
	return cliStdin(t, "", args...)
}

func cliStdin(t *testing.T, stdin string, args ...string) ran {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runCLI("test-version", args, strings.NewReader(stdin), &out, &errOut)
	return ran{code: code, stdout: out.String(), stderr: errOut.String()}
}

// want fails the test unless the run exited with code and its stderr
// holds msg.
func (r ran) want(t *testing.T, code int, msg string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, msg) {
		t.Fatalf("exit %d, stderr %q; want exit %d and %q\nstdout: %s", r.code, r.stderr, code, msg, r.stdout)
	}
}

// TestUsageErrors checks that each malformed command line is refused with
// exit status 2 and the message that names what is wrong, before anything
// is contacted or written.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	if r := cli(t, "ca", "init", "--dir", dir); r.code != exitOK {
		t.Fatalf("ca init: %+v", r)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "Usage:"},
		{[]string{"nope"}, `unknown command "nope" for "qledger"`},
		{[]string{"chain"}, "usage: qledger chain head|migrate|show|verify"},
		{[]string{"chain", "heda"}, "did you mean head?"},
		{[]string{"version", "extra"}, `unknown command "extra" for "qledger version"`},
		{[]string{"tx", "submit", "--bogus", "x"}, "unknown flag: --bogus"},
		{[]string{"tx", "submit"}, "tx submit: give one PAYLOAD argument or --file"},
		{[]string{"tx", "submit", "a", "b"}, "usage: qledger tx submit [flags] PAYLOAD | --file FILE"},
		{[]string{"tx", "submit", "--cert", "c.pem", "x"}, "--ca, --cert and --cert-key go together"},
		{[]string{"tx", "submit", "--secure", "x"}, "tx submit --secure needs --kme and --tls-dir"},
		{[]string{"tx", "submit", "--group", "one", "x"}, `invalid argument "one" for "--group" flag`},
		{[]string{"tx", "get"}, "usage: qledger tx get [flags] ID"},
		{[]string{"cluster", "join", "--id", "ab"}, "usage: qledger cluster join --addr API --id ID --raft-addr HOST:PORT"},
		{[]string{"cluster", "remove"}, "usage: qledger cluster remove [--addr API] ID"},
		{[]string{"cluster", "scale"}, "usage: qledger cluster scale --executors K"},
		{[]string{"fn", "deploy", "inc"}, "usage: qledger fn deploy NAME MODULE.wasm"},
		{[]string{"fn", "invoke"}, "usage: qledger fn invoke NAME --data JSON"},
		{[]string{"fn", "invoke", "inc", "{}", "--data", "{}"}, "usage: qledger fn invoke NAME --data JSON"},
		{[]string{"fn", "status"}, "usage: qledger fn status INVOCATION-ID"},
		{[]string{"data", "put", "f", "--threshold", "0"}, "threshold t must be at least 1 (--threshold T), not 0"},
		{[]string{"data", "put"}, "usage: qledger data put FILE --threshold T"},
		{[]string{"data", "get", "id"}, "usage: qledger data get ID -o FILE"},
		{[]string{"data", "get", "id", "-o"}, "flag needs an argument: 'o' in -o"},
		{[]string{"data", "export-shares", "id"}, "usage: qledger data export-shares ID DIR"},
		{[]string{"data", "recover", "dir"}, "usage: qledger data recover DIR -o FILE"},
		{[]string{"audit", "watch"}, "audit watch: --state is required"},
		{[]string{"ca", "init"}, "ca init: --dir is required"},
		{[]string{"ca", "issue", "--dir", dir}, "ca issue: --dir, --role and --name are required"},
		{[]string{"ca", "issue", "--dir", dir, "--role", "node", "--name", "n", "--groups", "2", "--group", "3"}, "ca issue: --group 3 needs --groups n > 3"},
		{[]string{"ca", "issue", "--dir", dir, "--role", "auditor", "--name", "a", "--group", "0"}, "ca issue: --node-id and --group are for node certificates"},
		{[]string{"node"}, "node: --data is required"},
		{[]string{"node", "--data", dir, "--groups", "x"}, `invalid argument "x" for "--groups" flag`},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--role", "executor", "--autoscale"}, "node: --autoscale runs on a voter-role node, not an executor"},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--autoscale", "--autoscale-provider", "k8s"}, `node: --autoscale-provider "k8s" (process, kubernetes or external)`},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--groups", "2", "--autoscale", "--autoscale-provider", "kubernetes", "--autoscale-k8s-namespace", "q"}, `2 groups share workload "qledger-executor": put {group} in its name`},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--autoscale", "--autoscale-provider", "kubernetes"}, "kubernetes: invalid config: no namespace"},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--autoscale", "--cold-start-wait", "-1s"}, "invalid autoscale config"},
		{[]string{"node", "--data", dir, "--insecure-gossip", "--autoscale", "--autoscale-min", "3", "--autoscale-max", "2"}, "invalid autoscale config: min 3, max 2"},
		{[]string{"node", "--data", dir, "--kme-url", "http://kme"}, `key manager URL "http://kme": want https://`},
		{[]string{"node", "--data", dir, "--kme-addr", "127.0.0.1:0", "--kme-url", "https://kme", "--kme-cert", "c", "--kme-cert-key", "k"}, "node: --kme-addr serves a key manager, --kme-url uses another: give one of them"},
		{[]string{"qkd", "run", "--output", "yaml"}, `invalid argument "yaml" for "--output" flag: want json or text`},
		{[]string{"qkd", "run", "--json", "--output", "text"}, "--json=true contradicts --output text"},
		{[]string{"qkd", "run", "--mode", "bogus"}, "bogus"},
		{[]string{"dev", "--groups", "0"}, "dev: need 1 <= groups × replicas <= 64, got 0 × 3"},
		{[]string{"dev", "--caller-rate", "-1"}, "dev: --caller-rate must not be negative (0: no limit), got -1"},
		{[]string{"dev", "--autoscale", "--autoscale-min", "3", "--autoscale-max", "2"}, "dev: cluster: invalid autoscale config: min 3, max 2"},
		{[]string{"demo", "--replicas", "2"}, "demo: need groups >= 1, replicas >= 3"},
		{[]string{"bench", "--clients", "x"}, `bench: "x" is not a positive integer`},
		{[]string{"bench", "membership", "--rounds", "0"}, "bench: --rounds must be at least 1"},
		{[]string{"bench", "failover", "--rounds", "0"}, "bench: --rounds must be at least 1"},
		{[]string{"bench", "failover", "--clients", "0"}, "bench: \"0\" is not a positive integer"},
		{[]string{"bench", "api", "--clients", "0"}, "bench: bad configuration: --clients must be at least 1, got 0"},
		{[]string{"bench", "api", "--reads", "1.5"}, "--reads must be between 0 and 1, got 1.5"},
		{[]string{"bench", "api", "--read-level", "eventual"}, `--read-level must be stale, default or linearizable, got "eventual"`},
		{[]string{"bench", "api", "--rate", "-1"}, "--rate must not be negative"},
		{[]string{"bench", "api", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"bench", "api", "--addr", "ftp://x"}, `bad API address "ftp://x"`},
		{[]string{"bench", "api", "--cert", "c.pem"}, "--ca, --cert and --cert-key go together"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := cli(t, c.args...)
			r.want(t, exitUsage, c.msg)
			if c.msg != "Usage:" && !strings.Contains(r.stderr, "--help' for usage.") {
				t.Fatalf("no pointer to the help: %q", r.stderr)
			}
		})
	}
}

// TestFailuresExitOne checks that a well-formed command that fails exits
// with status 1 and says why.
func TestFailuresExitOne(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"tx", "submit", "--addr", "http://127.0.0.1:1", "--timeout", "5s", "x"}, "connection refused"},
		{[]string{"chain", "verify", "--data", empty}, "no chain store (chain.db) under " + empty},
		{[]string{"data", "recover", empty, "-o", filepath.Join(empty, "out")}, "no share files (*.json) in " + empty},
		{[]string{"ca", "init", "--dir", empty, "--validity", "1h"}, ""}, // succeeds: the next case needs a CA
		{[]string{"ca", "init", "--dir", empty}, "already holds a CA; refusing to replace it"},
		{[]string{"ca", "issue", "--dir", empty, "--role", "root", "--name", "x"}, "root"},
		{[]string{"ca", "issue", "--dir", empty, "--role", "submitter", "--name", "s", "--out", empty}, ""},
		// A bare host:port is HTTPS with a certificate (no "needs an https:// address").
		{[]string{"tx", "submit", "--addr", "127.0.0.1:1", "--timeout", "5s", "--ca", filepath.Join(empty, "ca.pem"),
			"--cert", filepath.Join(empty, "s.pem"), "--cert-key", filepath.Join(empty, "s-key.pem"), "x"}, "https://127.0.0.1:1/v1/tx"},
	} {
		r := cli(t, c.args...)
		if c.msg == "" {
			if r.code != exitOK {
				t.Fatalf("%v: %+v", c.args, r)
			}
			continue
		}
		r.want(t, exitFailure, "qledger: ")
		r.want(t, exitFailure, c.msg)
		if strings.Count(r.stderr, "qledger:") != 1 {
			t.Fatalf("%v: the prefix more than once: %q", c.args, r.stderr)
		}
	}
}

func TestAddrScheme(t *testing.T) {
	for _, c := range []struct{ addr, scheme, want string }{
		{"127.0.0.1:8080", "https", "https://127.0.0.1:8080"},
		{"127.0.0.1:8080", "http", "http://127.0.0.1:8080"},
		{"http://h:1", "https", "http://h:1"}, // named: kept, and refused later with a clear error
		{"https://h:1/", "http", "https://h:1/"},
		{"not a url", "http", "not a url"}, // refused by the client, as given
		{"[::1]:8080", "https", "https://[::1]:8080"},
	} {
		if got := withScheme(c.addr, c.scheme); got != c.want {
			t.Errorf("withScheme(%q, %q) = %q, want %q", c.addr, c.scheme, got, c.want)
		}
	}
}

// TestHelpForEveryCommand asks every command of the tree for its help:
// it must succeed, print to stdout, and show the command's usage line and
// summary.
func TestHelpForEveryCommand(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		path := strings.Fields(c.CommandPath())[1:]
		r := cli(t, append(path, "--help")...)
		n++
		summary := c.Long
		if summary == "" {
			summary = c.Short
		}
		if r.code != exitOK || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, c.UseLine()) || !strings.Contains(r.stdout, summary) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.CommandPath(), r.code, r.stdout, r.stderr)
		}
	}
	root := (&app{}).rootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root)
	if n < 40 {
		t.Fatalf("walked %d commands, want the whole tree", n)
	}
	// Go-style and short spellings of help work too.
	for _, args := range [][]string{{"node", "-help"}, {"node", "-h"}, {"help", "node"}} {
		if r := cli(t, args...); r.code != exitOK || !strings.Contains(r.stdout, "--gossip-key") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_qledger",
		"zsh":  "#compdef qledger",
		"fish": "complete -c qledger",
	} {
		r := cli(t, "completion", shell)
		if r.code != exitOK || !strings.Contains(r.stdout, marker) {
			t.Errorf("completion %s: exit %d, lacks %q; stderr %q", shell, r.code, marker, r.stderr)
		}
	}
	// The scripts call back into the binary; subcommands and flags
	// complete.
	r := cli(t, "__complete", "chain", "")
	for _, want := range []string{"head\t", "show\t", "verify\t"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("__complete chain: lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := cli(t, "__complete", "node", "--gossip-"); !strings.Contains(r.stdout, "--gossip-key") {
		t.Errorf("__complete node --gossip-: %s", r.stdout)
	}
}

func TestGoStyleFlags(t *testing.T) {
	root := (&app{}).rootCmd()
	for _, c := range []struct{ in, out string }{
		{"node -groups 2 -data d", "node --groups 2 --data d"},
		{"node -groups=2 -bootstrap", "node --groups=2 --bootstrap"},
		{"tx submit -json -key k -x", "tx submit --json --key k -x"},       // -x is no flag: the payload
		{"tx submit --key -json payload", "tx submit --key -json payload"}, // a flag's value is left alone
		{"fn invoke inc -data -group", "fn invoke inc --data -group"},      // likewise
		{"chain head -group -1 -level stale", "chain head --group -1 --level stale"},
		{"data get id -o f", "data get id -o f"}, // a shorthand stays
		{"node -help", "node --help"},
		{"tx submit -- -json", "tx submit -- -json"}, // after --, all arguments
		{"data put -groups f", "data put -groups f"}, // not a flag of data put
		{"bench -http=false -groups 2", "bench --http=false --groups 2"},
		{"bench tls -duration 1s", "bench tls --duration 1s"},
	} {
		if got := strings.Join(goStyleFlags(root, strings.Fields(c.in)), " "); got != c.out {
			t.Errorf("%q: got %q, want %q", c.in, got, c.out)
		}
	}
}

// TestGoStyleSameAsDoubleDash runs commands spelt both ways and compares
// what they did.
func TestGoStyleSameAsDoubleDash(t *testing.T) {
	a := cli(t, "qkd", "run", "-qubits", "20000", "-seed", "s", "-json")
	b := cli(t, "qkd", "run", "--qubits", "20000", "--seed", "s", "--output", "json")
	if sa, sb := untimed(t, a), untimed(t, b); sa != sb {
		t.Fatalf("single dash: %s\ndouble dash: %s", sa, sb)
	}
	dir := t.TempDir()
	if r := cli(t, "ca", "init", "-dir", dir); r.code != exitOK {
		t.Fatalf("ca init -dir: %+v", r)
	}
	r := cli(t, "ca", "issue", "-dir", dir, "-role", "node", "-name", "n1", "-groups", "2", "-group", "1")
	if r.code != exitOK || !strings.Contains(r.stdout, "group 1 of 2") {
		t.Fatalf("ca issue, single dash: %+v", r)
	}
}

// TestEnvironment checks that QLEDGER_* variables fill flags that are not
// given, that a flag beats its variable, and that a bad value is refused
// naming the variable.
func TestEnvironment(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	t.Setenv("QLEDGER_CA_DIR", dir)
	if r := cli(t, "ca", "init"); r.code != exitOK || !strings.Contains(r.stdout, dir) {
		t.Fatalf("ca init from QLEDGER_CA_DIR: %+v", r)
	}
	if r := cli(t, "ca", "init", "--dir", other); r.code != exitOK || !strings.Contains(r.stdout, other) {
		t.Fatalf("--dir over QLEDGER_CA_DIR: %+v", r)
	}
	t.Setenv("QLEDGER_ADDR", "http://127.0.0.1:1")
	cli(t, "tx", "submit", "--timeout", "5s", "x").want(t, exitFailure, "127.0.0.1:1")
	t.Setenv("QLEDGER_GROUPS", "two")
	cli(t, "node", "--data", t.TempDir()).want(t, exitUsage, `QLEDGER_GROUPS="two": invalid argument "two" for "--groups" flag`)
	t.Setenv("QLEDGER_INSECURE_GOSSIP", "maybe")
	t.Setenv("QLEDGER_GROUPS", "1")
	cli(t, "node", "--data", t.TempDir()).want(t, exitUsage, `QLEDGER_INSECURE_GOSSIP="maybe"`)
}

func TestKeygenAndVersion(t *testing.T) {
	r := cli(t, "version")
	if r.code != exitOK || r.stdout != "qledger test-version\n" {
		t.Fatalf("version: %+v", r)
	}
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		r := cli(t, "keygen")
		key, err := decodeKey(strings.TrimSpace(r.stdout))
		if r.code != exitOK || err != nil || len(key) != 32 || seen[r.stdout] {
			t.Fatalf("keygen: %+v (%d bytes, %v)", r, len(key), err)
		}
		seen[r.stdout] = true
	}
}

// TestQKDRun runs one simulated block both ways: statistics for people,
// and the JSON shape scripts read.
func TestQKDRun(t *testing.T) {
	r := cli(t, "qkd", "run", "--qubits", "200000", "--seed", "t", "--noise", "0.02")
	if r.code != exitOK || !strings.Contains(r.stdout, "QBER") {
		t.Fatalf("qkd run: %+v", r)
	}
	var out struct {
		Aborted bool           `json:"aborted"`
		Stats   map[string]any `json:"stats"`
	}
	r = cli(t, "qkd", "run", "--qubits", "200000", "--seed", "t", "--noise", "0.02", "--json")
	decodeJSON(t, r, &out)
	if out.Aborted || out.Stats["mode"] != "full" {
		t.Fatalf("qkd run --json: %+v", out)
	}
	// An eavesdropper on every qubit aborts: exit 1, the reason in JSON.
	var ab struct {
		Aborted bool   `json:"aborted"`
		Reason  string `json:"abort_reason"`
	}
	r = cli(t, "qkd", "run", "--qubits", "200000", "--seed", "t", "--eve", "1", "--output", "json")
	if r.code != exitFailure {
		t.Fatalf("qkd run --eve 1: exit %d", r.code)
	}
	decodeJSONText(t, r.stdout, &ab)
	if !ab.Aborted || !strings.Contains(ab.Reason, "abort") {
		t.Fatalf("qkd run --eve 1 --output json: %+v", ab)
	}
}

// TestDataRecoverOffline recovers data from share files written the way
// export-shares writes them, with the -o spelling the docs use.
func TestDataRecoverOffline(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("confidential "), 100)
	shares, _, err := sharing.Split(data, sharing.DefaultOptions(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shares[1:] {
		b, err := sh.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("item.share-%d.json", sh.Index)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	r := cli(t, "data", "recover", dir, "-o", out)
	got, _ := os.ReadFile(out)
	if r.code != exitOK || !bytes.Equal(got, data) || !strings.Contains(r.stdout, "from 2 shares") {
		t.Fatalf("data recover: %+v, %d bytes recovered", r, len(got))
	}
}

// TestStdinPayload checks tx submit --file - reads the injected stdin
// (the request then fails: no node listens).
func TestStdinPayload(t *testing.T) {
	r := cliStdin(t, "from stdin", "tx", "submit", "--addr", "http://127.0.0.1:1", "--timeout", "5s", "--file", "-")
	r.want(t, exitFailure, "connection refused")
	if got, err := (&app{stdin: strings.NewReader("abc")}).payload("-", nil); err != nil || string(got) != "abc" {
		t.Fatalf("payload from stdin: %q, %v", got, err)
	}
}

func TestCommandNamesStable(t *testing.T) {
	// The verbs scripts and the docs use.
	want := []string{"audit", "bench", "ca", "chain", "cluster", "data", "demo", "dev", "explorer", "fn", "keygen", "node", "qkd", "snapshot", "tx", "version"}
	var got []string
	for _, c := range (&app{}).rootCmd().Commands() {
		got = append(got, c.Name())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
}

func decodeKey(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// decodeJSON checks the run succeeded and decodes its stdout into v,
// refusing fields v does not name only where v is a struct.
func decodeJSON(t *testing.T, r ran, v any) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	decodeJSONText(t, r.stdout, v)
}

func decodeJSONText(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, s)
	}
}

// untimed is a qkd run's JSON statistics without the timings, which
// differ from run to run.
func untimed(t *testing.T, r ran) string {
	t.Helper()
	var out struct {
		Aborted bool           `json:"aborted"`
		Stats   map[string]any `json:"stats"`
	}
	decodeJSON(t, r, &out)
	delete(out.Stats, "seconds")
	delete(out.Stats, "net_bits_per_second")
	b, _ := json.Marshal(out)
	return string(b)
}
