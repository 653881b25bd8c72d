package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// writeConfig writes a configuration file into a new temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// printedConfig runs qledger node --print-config with args and decodes
// what it prints.
func printedConfig(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := cli(t, append([]string{"node", "--print-config"}, args...)...)
	if r.code != exitOK {
		t.Fatalf("node --print-config %v: %+v", args, r)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--print-config printed no YAML: %v\n%s", err, r.stdout)
	}
	return m
}

// TestConfigFilePrecedence checks that a flag beats its environment
// variable, which beats the file, which beats the default.
func TestConfigFilePrecedence(t *testing.T) {
	path := writeConfig(t, `
data: /var/lib/qledger
groups: 2
bind: 10.0.0.1:7000
http: 10.0.0.1:8080
join:
  - 10.0.0.2:7946
  - 10.0.0.3:7946
bootstrap-expect: 3
qkd-noise: 0.05
log-format: json
`)
	t.Setenv("QLEDGER_GROUPS", "4")
	t.Setenv("QLEDGER_BIND", "10.0.0.9:7000")
	got := printedConfig(t, "--config", path, "--bind", "10.0.0.1:7001")
	for key, want := range map[string]any{
		"data":             "/var/lib/qledger", // file
		"groups":           4,                  // environment over file
		"bind":             "10.0.0.1:7001",    // flag over environment and file
		"http":             "10.0.0.1:8080",
		"join":             []any{"10.0.0.2:7946", "10.0.0.3:7946"},
		"bootstrap-expect": 3,
		"qkd-noise":        0.05,
		"log-format":       "json",
		"gossip-bind":      "127.0.0.1:7946", // default
		"role":             "voter",
	} {
		if g := got[key]; !equalYAML(g, want) {
			t.Errorf("%s = %#v, want %#v", key, g, want)
		}
	}
	t.Setenv("QLEDGER_CONFIG", path)
	if got := printedConfig(t); got["data"] != "/var/lib/qledger" {
		t.Fatalf("QLEDGER_CONFIG not read: data = %v", got["data"])
	}
}

func equalYAML(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return string(x) == string(y)
}

// TestConfigFileErrors checks that a bad file is a usage error naming the
// file and the line, for unknown keys and every kind of wrong type.
func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct{ text, msg string }{
		{"data: /d\ngrops: 2\n", `:2: unknown setting "grops" (did you mean "groups"?)`},
		{"data: /d\nconfig: other.yaml\n", `:2: unknown setting "config"`},
		{"groups: two\n", `:1: groups: want an integer, found a string "two"`},
		{"groups: \"2\"\n", `:1: groups: want an integer, found a string "2"`},
		{"groups: 2.5\n", `:1: groups: want an integer, found a number "2.5"`},
		{"bootstrap: yes please\n", `:1: bootstrap: want true or false, found a string`},
		{"data: [a, b]\n", `:1: data: want a string, found a list`},
		{"data:\n", `:1: data: want a string, found nothing`},
		{"join: [a, 7]\n", `:1: join: want a list of strings, found an integer on line 1`},
		{"groups: 2\n\ngroups: 3\n", `:3: groups is set twice (first on line 1)`},
		{"- data\n", `:1: want a mapping of setting: value`},
		{"data: x\n  y: : :\n", `: yaml: line 2:`},
		{"log-format: xml\n", `:1: log-format: invalid argument "xml"`},
	} {
		path := writeConfig(t, c.text)
		cli(t, "node", "--config", path, "--print-config").want(t, exitUsage, path+c.msg)
	}
	cli(t, "node", "--config", "/nonexistent/node.yaml").want(t, exitUsage, "no such file")
}

// TestPrintConfigRoundTrip checks that --print-config prints a file that
// reads back to the same configuration, and that it leaves secrets out.
func TestPrintConfigRoundTrip(t *testing.T) {
	key := "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="
	r := cli(t, "node", "--print-config", "--data", "/d", "--join", "a:1,b:2", "--groups", "3", "--gossip-key", key, "--bootstrap")
	if r.code != exitOK {
		t.Fatalf("%+v", r)
	}
	if strings.Contains(r.stdout, key) || !strings.Contains(r.stdout, "# set but not shown: gossip-key") {
		t.Fatalf("the gossip key is shown, or its omission not said:\n%s", r.stdout)
	}
	again := cli(t, "node", "--print-config", "--config", writeConfig(t, r.stdout), "--gossip-key", key)
	if again.code != exitOK || again.stdout != r.stdout {
		t.Fatalf("read back differently:\n%s\nwant:\n%s\n%s", again.stdout, r.stdout, again.stderr)
	}
}

// TestLogFormatJSON checks that --log-format json makes every log line
// one JSON object, and that another format is a usage error.
func TestLogFormatJSON(t *testing.T) {
	var out strings.Builder
	a := &app{stderr: &out}
	a.logger(logOptions{level: "info", format: "json"}).Info("block committed", "group", 1)
	var line map[string]any
	if err := json.Unmarshal([]byte(out.String()), &line); err != nil || line["@message"] != "block committed" || line["group"] != float64(1) {
		t.Fatalf("not one JSON object per line: %v: %q", err, out.String())
	}
	cli(t, "dev", "--log-format", "xml").want(t, exitUsage, `invalid argument "xml" for "--log-format"`)
}
