package faults

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"qledger/api/client"
)

// TestDeployBackupRestore deploys the way the README's deployment
// section does, on seven hosts of their own (network namespaces with
// their own addresses): certificates from `qledger ca` carrying each
// host's IP, six nodes started from deploy/config/node.yaml bootstrap two
// groups of three (bootstrap-expect), and a seventh joins. A stock HTTPS
// client (net/http with only the CA pool, and curl where installed)
// verifies every node by its IP SAN. While a writer writes to both
// groups, then with writes stopped, each group is backed up with
// `qledger snapshot save`; the cluster and its data are destroyed, and
// each group is restored elsewhere (six new hosts and addresses) from its
// snapshot by `qledger snapshot restore` on one seed node, the other
// nodes joining it. The restored cluster passes `qledger chain verify`,
// serves the heads the old one had, and serves every acknowledged write
// exactly once with an inclusion proof that verifies.
func TestDeployBackupRestore(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	start := time.Now()
	dir := t.TempDir()
	bin, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	lab := newTestLab(t, "n1", "n2", "n3", "n4", "n5", "n6", "n7")
	f := newFleet(t, lab, bin, filepath.Join(dir, "old"), 2)
	h := lab.Hosts
	seeds := gossipAddrs(h[:6]...)
	for i := range 6 {
		f.add(h[i], i/3, seeds)
	}
	f.waitHealthy(ctx, 3, 2*time.Minute)
	t.Logf("2 groups × 3 nodes healthy after %v", time.Since(start).Round(time.Millisecond))

	checkStockHTTPS(t, f)

	stop := f.writers("deploy", 1, 20*time.Millisecond)
	n7 := f.add(h[6], 0, seeds)
	waitFor(t, "the seventh node to be a member of group 0 that has caught up", 90*time.Second, func() bool {
		m, ok := f.member(ctx, n7)
		return ok && m.Suffrage != "none" && m.Healthy && m.RaftLag != nil
	})
	hs := stop()
	acked := f.checkGroups(ctx, hs)
	if acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	heads := make([]client.Head, f.groups)
	for g := range f.groups {
		heads[g] = f.sameHead(ctx, g, time.Minute)
	}

	// Backup: one snapshot per group, through any node, as an admin.
	snaps := make([]string, f.groups)
	for g := range f.groups {
		snaps[g] = filepath.Join(dir, "g"+strconv.Itoa(g)+".snap")
		out := f.cliUntil(time.Minute, anyOutput, append([]string{"snapshot", "save", "--group", strconv.Itoa(g), snaps[g], "--addr", addr(f.Nodes[3*(1-g)])}, f.as("admin")...)...)
		t.Logf("snapshot save --group %d: %s", g, strings.TrimSpace(out))
		f.cli("snapshot", "verify", snaps[g])
	}

	// Destroy: every node, its data directory and its network.
	f.Close()
	for _, n := range f.Nodes {
		if err := os.RemoveAll(filepath.Join(f.dir, n.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}

	// Restore elsewhere: new hosts, new addresses, the same CA.
	restored := filepath.Join(dir, "restored")
	if err := os.MkdirAll(restored, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.caDir, filepath.Join(restored, "ca")); err != nil {
		t.Fatal(err)
	}
	lab2 := newTestLab(t, "r1", "r2", "r3", "r4", "r5", "r6")
	if lab2.net == lab.net {
		t.Fatalf("the new lab reuses the old addresses %sx", lab.net)
	}
	r := newFleet(t, lab2, bin, restored, 2)
	rh := lab2.Hosts
	rseeds := gossipAddrs(rh[0], rh[3])
	for g, host := range []*Host{rh[0], rh[3]} {
		id := r.issue(host, g)
		r.cli("snapshot", "restore", snaps[g], "--data", filepath.Join(restored, host.Name), "--groups", "2", "--id", id, "--advertise", host.IP+":"+raftPort)
		r.start(host, g, id, rseeds)
	}
	waitFor(t, "the restored seeds to lead their groups", time.Minute, func() bool {
		for _, n := range r.Nodes {
			if _, ok := r.member(ctx, n); !ok {
				return false
			}
		}
		return true
	})
	for _, i := range []int{1, 2, 4, 5} {
		r.add(rh[i], i/3, rseeds)
	}
	r.waitHealthy(ctx, 3, 2*time.Minute)

	r.cliUntil(time.Minute, func(out string) bool { return strings.Count(out, "head signed by node") == r.groups },
		append([]string{"chain", "verify", "--addr", addr(r.Nodes[2])}, r.as("auditor")...)...)
	for g := range r.groups {
		if got := r.sameHead(ctx, g, time.Minute); got.Height != heads[g].Height || got.Hash != heads[g].Hash {
			t.Fatalf("group %d restored at height %d %s, backed up at %d %s", g, got.Height, got.Hash, heads[g].Height, heads[g].Hash)
		}
	}
	if got := r.checkGroups(ctx, hs); got != acked {
		t.Fatalf("the restored cluster holds %d acknowledged writes, the old one %d", got, acked)
	}
	// The restored cluster takes writes (retried with one key: an
	// election under load may refuse the first attempt).
	waitFor(t, "a write to the restored cluster", time.Minute, func() bool {
		_, _, err := r.Nodes[0].API.Submit(ctx, []byte("after restore"), client.SubmitOptions{IdempotencyKey: "after-restore"})
		return err == nil
	})
	t.Logf("deployed, backed up, destroyed, restored and verified %d acknowledged writes in %v", acked, time.Since(start).Round(time.Millisecond))
}

// newTestLab makes a lab of hosts named names, removed when t ends.
func newTestLab(t *testing.T, names ...string) *Lab {
	t.Helper()
	lab, err := NewLab(names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	return lab
}

// checkStockHTTPS checks every node with clients that know nothing of
// qledger: Go's net/http verifying the server by the CA pool and the IP in
// the URL (no custom verification), and curl if it is installed. A
// certificate checked against another node's address is refused.
func checkStockHTTPS(t *testing.T, f *fleet) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(f.caDir, "submitter.pem"), filepath.Join(f.caDir, "submitter-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	stock := func(serverName string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: f.Roots, Certificates: []tls.Certificate{cert}, ServerName: serverName}}}
	}
	for _, n := range f.Nodes {
		resp, err := stock("").Get(addr(n) + "/v1/cluster")
		if err != nil {
			t.Fatalf("net/http to %s: %v", n.Name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"groups"`) {
			t.Fatalf("net/http to %s: %d %s", n.Name, resp.StatusCode, body)
		}
	}
	// n1's certificate does not name n2's address.
	if _, err := stock(f.Nodes[1].Host.IP).Get(addr(f.Nodes[0]) + "/readyz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a node's certificate checked against another node's address: %v, want refused", err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl not installed: checked with net/http only")
		return
	}
	for _, n := range f.Nodes {
		out, err := exec.Command(curl, "--silent", "--show-error", "--fail", "--cacert", filepath.Join(f.caDir, "ca.pem"),
			"--cert", filepath.Join(f.caDir, "submitter.pem"), "--key", filepath.Join(f.caDir, "submitter-key.pem"), addr(n)+"/readyz").CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s/readyz: %v\n%s", addr(n), err, out)
		}
	}
}
