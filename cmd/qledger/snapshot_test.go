package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/server"
)

// TestSnapshotSaveAndVerify saves group 0 of an embedded 1×3 cluster on a
// CA while writes go on, verifies the file offline, and checks that a
// flipped byte, a cut file and a header that lies are each refused; only
// an admin may save.
func TestSnapshotSaveAndVerify(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := server.DevCA(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: filepath.Join(dir, "nodes"), Groups: 1, Replicas: 3, CA: ca, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	as := func(role string, args ...string) ran {
		t.Helper()
		return cli(t, append(args, "--addr", lc.Addrs[0], "--ca", filepath.Join(tlsDir, "ca.pem"),
			"--cert", filepath.Join(tlsDir, role+".pem"), "--cert-key", filepath.Join(tlsDir, role+"-key.pem"))...)
	}
	for i := range 10 {
		if r := as("submitter", "tx", "submit", "before "+string(rune('a'+i))); r.code != exitOK {
			t.Fatalf("submit: %+v", r)
		}
	}
	// Writes go on while the snapshot is taken.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				as("submitter", "tx", "submit", "during")
			}
		}
	}()
	file := filepath.Join(dir, "g0.snap")
	if r := as("submitter", "snapshot", "save", "--group", "0", file); r.code != exitFailure || !strings.Contains(r.stderr, "403") {
		t.Fatalf("a submitter saved a snapshot: %+v", r)
	}
	r := as("admin", "snapshot", "save", "--group", "0", "--json", file)
	close(stop)
	wg.Wait()
	var saved snapshotHeader
	decodeJSON(t, r, &saved)
	if saved.Group != 0 || saved.Txs < 10 || saved.Height == 0 || len(saved.SHA256) != 64 {
		t.Fatalf("saved %+v", saved)
	}
	r = cli(t, "snapshot", "verify", file)
	if r.code != exitOK || !strings.Contains(r.stdout, "ok  group 0  height ") {
		t.Fatalf("verify: %+v", r)
	}

	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hdrEnd := len(snapshotMagic) + strings.IndexByte(string(orig[len(snapshotMagic):]), '\n') + 1
	lying := saved
	lying.Height++
	lyingHdr, _ := json.Marshal(lying)
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"flipped byte", flip(orig, hdrEnd+len(orig[hdrEnd:])/2), "another checksum"},
		{"cut short", orig[:len(orig)-4096], "another checksum"},
		{"header lies", append(append([]byte(snapshotMagic), append(lyingHdr, '\n')...), orig[hdrEnd:]...), "is not the header's"},
		{"not a snapshot", []byte("hello\n"), "is not a qledger snapshot"},
	} {
		bad := filepath.Join(dir, "bad.snap")
		if err := os.WriteFile(bad, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		cli(t, "snapshot", "verify", bad).want(t, exitFailure, c.msg)
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x40
	return out
}
