package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/fsm"
	"qledger/pki"
)

// TestChainCorruptionThroughTheCLI runs a 1×3 dev cluster as a process
// and damages one replica's chain.db under it: cluster scrub names the
// replica, the height and what is wrong; cluster status shows the alarm;
// cluster repair rebuilds the store and the alarm goes; every write
// stays readable. Then the cluster is stopped, a store is damaged at
// rest, and the restarted cluster sets it aside and rebuilds it before
// serving; every store verifies offline afterwards.
func TestChainCorruptionThroughTheCLI(t *testing.T) {
	http := freePort(t)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	args := []string{"dev", "--groups", "1", "--replicas", "3", "--http", http, "--data", dir}
	p := &proc{t: t, raft: "dev", http: http, tlsDir: tlsDir, args: args}
	p.start()
	ctx := context.Background()
	waitFor(t, "dev cluster ready", time.Minute, func() bool { return ready(ctx, p.client()) })
	var ids []string
	for i := range 20 {
		id, _, err := p.client().Submit(ctx, []byte(fmt.Sprintf("write %04d", i)), client.SubmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.ID)
	}
	addr := "https://" + http
	admin := tlsArgs(tlsDir, "admin")
	cli := func(args ...string) (string, error) {
		return run(t, append(append(args, "--addr", addr), admin...)...)
	}
	damage := func(height uint64) string {
		t.Helper()
		b, err := p.as(pki.RoleAuditor).Block(ctx, 0, height, "linearizable")
		if err != nil {
			t.Fatal(err)
		}
		stores, err := fsm.FindStores(dir)
		if err != nil || len(stores) != 3 {
			t.Fatalf("stores %v, %v", stores, err)
		}
		path := stores[0]
		flipEvery(t, path, b.Raw)
		return path
	}

	// At run time: found by a scrub, shown, contained, repaired.
	good, err := p.as(pki.RoleAuditor).Block(ctx, 0, 7, "linearizable")
	if err != nil {
		t.Fatal(err)
	}
	damage(7)
	out, err := cli("cluster", "scrub", "--group", "0")
	m := regexp.MustCompile(`node ([0-9a-f]{12,})…?: DAMAGED at height 7: chain: transaction Merkle root mismatch`).FindStringSubmatch(out)
	if err == nil || m == nil {
		t.Fatalf("scrub: %v\n%s", err, out)
	}
	node := m[1]
	out, err = cli("cluster", "status")
	if err != nil || !strings.Contains(out, "CHAIN ALARM") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// The damaged replica's own API: not ready, and every read level
	// answers the block as the healthy replicas hold it.
	st, err := p.client().Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var api string
	for _, mb := range st.Groups[0].Members {
		if strings.HasPrefix(mb.ID, node) {
			api = mb.APIAddr
		}
	}
	if api == "" {
		t.Fatalf("no API address for node %s in %+v", node, st.Groups[0].Members)
	}
	damaged := &proc{t: t, http: strings.TrimPrefix(api, "https://"), tlsDir: tlsDir}
	if err := damaged.as(pki.RoleAuditor).Ready(ctx); err == nil || !strings.Contains(err.Error(), "chain_corrupt") {
		t.Fatalf("readyz of the damaged replica: %v", err)
	}
	for _, lv := range []client.Level{"stale", "default", "linearizable"} {
		// A damaged leader hands over: reads wait for the next leader.
		var b client.Block
		waitFor(t, string(lv)+" read on the damaged replica", time.Minute, func() bool {
			var err error
			b, err = damaged.as(pki.RoleAuditor).Block(ctx, 0, 7, lv)
			return err == nil
		})
		if !bytes.Equal(b.Raw, good.Raw) {
			t.Fatalf("%s read of block 7 on the damaged replica: not the healthy bytes", lv)
		}
	}
	if out, err = cli("cluster", "repair", "--group", "0", "--node", node); err != nil || !strings.Contains(out, "rebuilt") {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	if out, err = cli("cluster", "scrub", "--group", "0"); err != nil || strings.Count(out, "verified") != 3 {
		t.Fatalf("scrub after repair: %v\n%s", err, out)
	}

	// At rest: found before serving and rebuilt.
	p.signal(syscall.SIGTERM)
	path := damage0(t, dir)
	p.start()
	waitFor(t, "dev cluster ready again", time.Minute, func() bool { return ready(ctx, p.client()) })
	if !strings.Contains(p.log.String(), "chain store damaged; setting it aside") {
		t.Fatalf("no damage report at start:\n%s", p.log.String())
	}
	if _, err := os.Stat(path + ".damaged"); err != nil {
		t.Fatalf("damaged store not set aside: %v", err)
	}
	for _, id := range ids {
		waitFor(t, "every write readable", time.Minute, func() bool {
			_, err := p.client().Tx(ctx, id, "linearizable")
			return err == nil
		})
	}
	waitFor(t, "no alarm once the rebuilt store verifies", time.Minute, func() bool {
		out, err := cli("cluster", "status")
		return err == nil && !strings.Contains(out, "CHAIN ALARM")
	})
	p.signal(syscall.SIGTERM)
	if out, err := run(t, "chain", "verify", "--data", dir); err != nil || strings.Count(out, ": ok") != 3 {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

// damage0 flips the last byte of every copy of block 5 in the first
// chain store under dir, read from the store itself (the cluster is
// stopped), and returns its path.
func damage0(t *testing.T, dir string) string {
	t.Helper()
	stores, err := fsm.FindStores(dir)
	if err != nil || len(stores) != 3 {
		t.Fatalf("stores %v, %v", stores, err)
	}
	s, err := fsm.OpenStoreReadOnly(stores[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Block(5)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(stores[0] + ".damaged") // left by the repair above, if it was this one
	flipEvery(t, stores[0], b)
	return stores[0]
}

// flipEvery flips the last byte of every copy of needle in the file.
func flipEvery(t *testing.T, path string, needle []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	found := 0
	for off := 0; ; {
		i := bytes.Index(raw[off:], needle)
		if i < 0 {
			break
		}
		at := off + i + len(needle) - 1
		if _, err := fh.WriteAt([]byte{raw[at] ^ 1}, int64(at)); err != nil {
			t.Fatal(err)
		}
		found++
		off = at + 1
	}
	if found == 0 {
		t.Fatalf("block not found in %s", path)
	}
}
