package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/cluster"
	"qledger/fsm"
	"qledger/server"
)

// TestSnapshotSaveAndVerify saves group 0 of an embedded 1×3 cluster on a
// CA while writes go on, verifies the file offline, and checks that a
// flipped byte, a cut file and a header that lies are each refused; only
// an admin may save.
func TestSnapshotSaveAndVerify(t *testing.T) {
	dir := t.TempDir()
	l := newCALab(t, server.LocalConfig{Dir: filepath.Join(dir, "nodes"), Groups: 1, Replicas: 3})
	ctx, as := l.ctx, l.as
	var ids []string
	for i := range 10 {
		var rec struct{ ID string }
		decodeJSON(t, as("submitter", "tx", "submit", "--json", "before "+string(rune('a'+i))), &rec)
		ids = append(ids, rec.ID)
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
	restoreAndServe(ctx, t, file, saved, ids)
}

// restoreAndServe seeds a new node from the snapshot file, starts it as
// a new cluster and checks that the chain verifies, that every
// transaction written before the snapshot is served with a valid proof,
// and that writing goes on from the snapshot's height.
func restoreAndServe(ctx context.Context, t *testing.T, file string, saved snapshotHeader, ids []string) {
	data := filepath.Join(t.TempDir(), "restored")
	addr := freeAddr(t)
	if r := cli(t, "snapshot", "restore", file, "--data", data, "--groups", "1", "--advertise", addr); r.code != exitOK {
		t.Fatalf("restore: %+v", r)
	}
	cli(t, "snapshot", "restore", file, "--data", data, "--groups", "1", "--advertise", addr).want(t, exitFailure, "already holds")
	c := cluster.DefaultConfig()
	c.DataDir, c.BindAddr, c.GossipBind = data, addr, "127.0.0.1:0"
	c.LoopbackTiming()
	n, err := server.Start(server.Config{Cluster: c, APIAddr: "127.0.0.1:0", Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(ctx)
	api := n.Cluster().Info().APIAddr
	for deadline := time.Now().Add(time.Minute); cli(t, "chain", "head", "--addr", api).code != exitOK; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restored node never served its chain")
		}
	}
	if r := cli(t, "chain", "verify", "--addr", api); r.code != exitOK || !strings.Contains(r.stdout, "group 0: ok") {
		t.Fatalf("chain verify on the restored cluster: %+v", r)
	}
	for _, id := range ids {
		if r := cli(t, "tx", "get", id, "--addr", api); r.code != exitOK || !strings.Contains(r.stdout, "inclusion proof: verified here") {
			t.Fatalf("tx %s from the snapshot: %+v", id, r)
		}
	}
	var rec struct{ Height uint64 }
	decodeJSON(t, cli(t, "tx", "submit", "--json", "--addr", api, "after the restore"), &rec)
	if rec.Height != saved.Height+1 {
		t.Fatalf("a write after the restore went to height %d, want %d", rec.Height, saved.Height+1)
	}
	// A node joining the restored group receives the chain (as a raft
	// snapshot: the leader's log starts after it) and then the new block.
	jc := cluster.DefaultConfig()
	jc.DataDir, jc.BindAddr, jc.GossipBind = filepath.Join(t.TempDir(), "joiner"), "127.0.0.1:0", "127.0.0.1:0"
	jc.Join = []string{n.Cluster().GossipAddr()}
	jc.LoopbackTiming()
	j, err := server.Start(server.Config{Cluster: jc, APIAddr: "127.0.0.1:0", Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(ctx)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if h, ok, _ := j.Cluster().Store().Head(); ok && h.Height == rec.Height {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the joining node never held the restored chain and the write after it (height %d)", rec.Height)
		}
	}
	if rep, err := j.Cluster().Store().Verify(ctx, fsm.VerifyOptions{}); err != nil || rep.Head.Height != rec.Height {
		t.Fatalf("the joined node's own chain store: %+v, %v", rep, err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x40
	return out
}
