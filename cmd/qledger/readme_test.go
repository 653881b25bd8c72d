package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/examples/functions"
	"qledger/examples/functions/tiny"
	"qledger/server"
)

// readmeSkipped are the README command lines this test does not run, and
// why: each either runs forever, needs hosts or ports this test does not
// have, or is measured elsewhere.
var readmeSkipped = []struct{ prefix, why string }{
	{"./cmd/qledger", "the go build line: the test is the binary"},
	{"dev ", "the test starts the cluster itself"},
	{"node ", "needs the hosts 10.0.0.x"},
	{"audit watch", "runs until interrupted"},
	{"explorer", "serves until interrupted; integration's TestExplorerInBrowser drives it in Chromium"},
	{"bench", "a measurement, run by make bench"},
	{"qkd curve", "a figure, tested in qkd/curve"},
	{"chain verify --data", "needs a stopped node's data directory at /var/lib"},
	{"tx submit --secure", "needs the key manager's port, printed by dev"},
	{"snapshot restore", "writes under /var/lib; TestSnapshotSaveAndVerify restores and serves a snapshot"},
}

// readmeFailing are the README command lines that show a failure on
// purpose, and the exit status they must end with.
var readmeFailing = map[string]int{
	"qkd run --eve": exitFailure, // an eavesdropper aborts the protocol
}

// TestREADMECommandsRun runs, as written, every qledger command line of
// README.md that a new user would type against `qledger dev`: the cluster
// is an embedded one on a development CA, the environment is the one dev
// prints, "/tmp/qdev" is its data directory and "<id>" the ID the last
// command of the same verb printed. Every line must exit 0 but the ones in
// readmeFailing, which must fail as they say.
func TestREADMECommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Go example functions and starts a cluster")
	}
	work := t.TempDir()
	buildExamples(t, filepath.Join(work, "examples", "functions"))
	devDir := filepath.Join(work, "qdev")
	ca, err := server.DevCA(filepath.Join(devDir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: devDir, Groups: 2, Replicas: 1, CA: ca, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	tls := filepath.Join(devDir, "tls")
	t.Setenv("QLEDGER_ADDR", lc.Addrs[0])
	t.Setenv("QLEDGER_CA", filepath.Join(tls, "ca.pem"))
	t.Setenv("QLEDGER_CERT", filepath.Join(tls, "submitter.pem"))
	t.Setenv("QLEDGER_CERT_KEY", filepath.Join(tls, "submitter-key.pem"))
	lines := documentedCommands(t, "../../README.md")
	t.Chdir(work)
	writeFile(t, "report.pdf", 100_000)
	writeFile(t, "notes.txt", 100)

	ids := map[string]string{}
	ranN := 0
	for _, line := range lines {
		if why := readmeSkip(line); why != "" {
			t.Logf("skipped: qledger %s (%s)", line, why)
			continue
		}
		args := shellWords(line)
		for i, w := range args {
			w = strings.ReplaceAll(w, "/tmp/qdev", devDir)
			if strings.Contains(w, "<id>") {
				if ids[args[0]] == "" {
					t.Fatalf("qledger %s: no %s ID printed before it", line, args[0])
				}
				w = strings.ReplaceAll(w, "<id>", ids[args[0]])
			}
			args[i] = w
		}
		r := cli(t, args...)
		if r.code != readmeExit(line) {
			t.Fatalf("qledger %s: exit %d\nstdout: %s\nstderr: %s", line, r.code, r.stdout, r.stderr)
		}
		if m := printedID.FindStringSubmatch(r.stdout); m != nil {
			ids[args[0]] = m[1]
		}
		ranN++
	}
	if ranN < 20 {
		t.Fatalf("ran only %d of the README's %d command lines", ranN, len(lines))
	}
}

// printedID is the ID in "committed <id>" (tx submit) or "stored <id>:"
// (data put).
var printedID = regexp.MustCompile(`(?m)^(?:committed|stored) ([0-9a-f]{32,64})\b`)

func readmeExit(line string) int {
	for prefix, code := range readmeFailing {
		if strings.HasPrefix(line, prefix) {
			return code
		}
	}
	return exitOK
}

func readmeSkip(line string) string {
	for _, s := range readmeSkipped {
		if strings.HasPrefix(line, s.prefix) {
			return s.why
		}
	}
	return ""
}

func writeFile(t *testing.T, name string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildExamples writes the example functions into dir as make examples
// does. Under the race detector, compiling the Go-built modules (megabytes
// of wasm) takes minutes, so increment.wasm is then the hand-assembled
// module with the same behaviour; make test runs this package once more
// without -race, with the real one.
func buildExamples(t *testing.T, dir string) {
	t.Helper()
	if !raceEnabled {
		if _, err := functions.Build(dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := functions.BuildTiny(dir); err != nil {
		t.Fatal(err)
	}
	code, _ := tiny.Module("tinyinc")
	if err := os.WriteFile(filepath.Join(dir, "increment.wasm"), code, 0o600); err != nil {
		t.Fatal(err)
	}
}
