package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDataCLIExportRecover stores an item with `qledger data put` on a
// `qledger dev` cluster (mutual TLS), exports its shares with `qledger
// data export-shares` as a caller on the reader list, and recovers it
// offline with `qledger data recover`, from all shares and from t of
// them; `qledger data get` recovers it online, and a get that fails
// leaves no file; a caller not on the reader list exports nothing.
func TestDataCLIExportRecover(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	data := make([]byte, 1600<<10) // shares of two segments
	rand.Read(data)
	copy(data, []byte{0, 0}) // leading zeros survive
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Bad input is refused before any request.
	if out, err := run(t, "data", "put", in, "--threshold", "0"); err == nil || !strings.Contains(out, "threshold t must be at least 1") {
		t.Fatalf("put with threshold 0: %v\n%s", err, out)
	}

	http := freePort(t)
	tlsDir := filepath.Join(dir, "data", "tls")
	p := &proc{t: t, raft: "dev", http: http, tlsDir: tlsDir, args: []string{"dev", "--groups", "3", "--replicas", "1", "--http", http, "--data", filepath.Join(dir, "data")}}
	p.start()
	ctx := context.Background()
	waitFor(t, "dev cluster ready", 30*time.Second, func() bool { return ready(ctx, p.client()) })
	cli := func(cert string, args ...string) (string, error) {
		t.Helper()
		return run(t, append(append(args, "--addr", "https://"+http), tlsArgs(tlsDir, cert)...)...)
	}

	if out, err := cli("submitter", "data", "put", in, "--threshold", "2", "--id", "cli-item", "--readers", "submitter", "--description", "cli test"); err != nil || !strings.Contains(out, "stored cli-item") {
		t.Fatalf("data put: %v\n%s", err, out)
	}
	shares := filepath.Join(dir, "shares")
	out, err := cli("submitter", "data", "export-shares", "cli-item", shares)
	if err != nil || strings.Count(out, "wrote ") != 3 {
		t.Fatalf("export-shares: %v\n%s", err, out)
	}
	recovered := filepath.Join(dir, "out.bin")
	out, err = run(t, "data", "recover", shares, "-o", recovered)
	if err != nil || !strings.Contains(out, "from 3 shares") {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(recovered); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("recovered data differs (%v)", err)
	}
	// Any t of the exported files recover it.
	if err := os.Remove(filepath.Join(shares, "cli-item.share-1.json")); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "data", "recover", shares, "-o", recovered)
	if err != nil || !strings.Contains(out, "from 2 shares") {
		t.Fatalf("recover from t shares: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(recovered); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data recovered from t shares differs (%v)", err)
	}
	// Online, the digest recorded on the shares is checked.
	get := filepath.Join(dir, "get.bin")
	if out, err := cli("submitter", "data", "get", "cli-item", "-o", get); err != nil || !strings.Contains(out, "digest checked") {
		t.Fatalf("data get: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(get); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data got differs (%v)", err)
	}
	// A get that fails writes nothing, not even a temporary file.
	getDir := t.TempDir()
	if out, err := cli("submitter", "data", "get", "no-such-item", "-o", filepath.Join(getDir, "none.bin")); err == nil {
		t.Fatalf("data get of a missing item: %s", out)
	}
	if ents, _ := os.ReadDir(getDir); len(ents) != 0 {
		t.Fatalf("a failed get left %d files", len(ents))
	}
	// The auditor is not on the reader list: no group serves it a share.
	out, err = cli("auditor", "data", "export-shares", "cli-item", filepath.Join(dir, "auditor"))
	if err == nil || !strings.Contains(out, "not on the reader list") {
		t.Fatalf("export-shares by a caller not on the reader list: %v\n%s", err, out)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "auditor", "*.json")); len(files) != 0 {
		t.Fatalf("shares exported to a caller not on the reader list: %v", files)
	}
	p.signal(syscall.SIGTERM)
}
