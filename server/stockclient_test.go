package server

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestStockHTTPSClientsVerifyEmbeddedNodes checks that the node
// certificates dev and the demo use carry the addresses the nodes serve
// on: Go's stock HTTPS client, holding only the CA pool (no custom peer
// verification) and a submitter's certificate, reaches every node's API,
// and so does curl --cacert when it is installed.
func TestStockHTTPSClientsVerifyEmbeddedNodes(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := DevCA(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := StartLocal(ctx, LocalConfig{Dir: dir, Groups: 1, Replicas: 2, CA: ca, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "submitter.pem"), filepath.Join(tlsDir, "submitter-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}},
	}}
	for _, addr := range lc.Addrs {
		for _, base := range []string{addr, strings.Replace(addr, "127.0.0.1", "localhost", 1)} {
			resp, err := hc.Get(base + "/v1/cluster")
			if err != nil {
				t.Fatalf("stock client, %s: %v", base, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"groups"`) {
				t.Fatalf("stock client, %s/v1/cluster: %d %s", base, resp.StatusCode, body)
			}
		}
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl not installed: only the Go client checked")
		return
	}
	out, err := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--fail",
		"--cacert", filepath.Join(tlsDir, "ca.pem"),
		"--cert", filepath.Join(tlsDir, "submitter.pem"), "--key", filepath.Join(tlsDir, "submitter-key.pem"),
		lc.Addrs[0]+"/v1/cluster").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"groups"`) {
		t.Fatalf("curl --cacert %s/v1/cluster: %v\n%s", lc.Addrs[0], err, out)
	}
}
