package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"

	"qledger/api"
	"qledger/api/client"
	"qledger/examples/functions/tiny"
	"qledger/explorer"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/server"
)

// chromium is the browser the explorer tests drive: Debian's chromium,
// which .ci/run installs when it is missing. Outside CI a machine without
// it skips the tests.
func chromium(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// tamper rewrites the first proof hash of every GET /v1/tx/ answer while
// on, as an attacker between the node and the page would.
type tamper struct {
	next http.RoundTripper
	on   atomic.Bool
}

func (t *tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || !t.on.Load() || !strings.HasPrefix(r.URL.Path, "/v1/tx/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	i := bytes.Index(body, []byte(`"hashes":["`))
	if i >= 0 {
		j := i + len(`"hashes":["`)
		if body[j] == '0' {
			body[j] = '1'
		} else {
			body[j] = '0'
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// TestExplorerInBrowser loads the explorer's pages in headless Chromium
// against a dev cluster with a CA and a key manager: the overview, a
// group's blocks, a block, the functions, the shared data and the key
// manager pages show what the API reports; search finds an invocation by
// its ID; a transaction's inclusion proof and the checkpoint's Ed25519
// signature verify in the page; with the proof altered in flight the page
// says verification failed; and on a phone's screen the tables fold into
// rows. Screenshots go to a temporary directory, or docs/ with
// QLEDGER_SCREENSHOTS=docs.
func TestExplorerInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := server.DevCA(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A key manager beside node 0, as qledger dev runs it, so that the
	// key manager page has a pool and QKD blocks to show.
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18 // as qledger dev: enough for a finite-key block to yield keys
	qc.Channel.Noise = 0.02
	ks, err := kme.StartService(ctx, kme.ServiceConfig{Addr: "127.0.0.1:0", TLSDir: filepath.Join(dir, "kme"), Masters: []string{"client"}, Gateway: "gateway", QKD: qc})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir, Groups: 2, Replicas: 1, CA: ca, Logger: hclog.NewNullLogger(),
		Keys0: &api.KeyChannel{KME: ks.KME.Local(ks.Gateway), GatewaySAE: ks.Gateway}})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()

	sub, err := server.RoleClient(tlsDir, pki.RoleSubmitter, lc.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	var last client.Receipt
	for i := range 12 {
		g := i % 2
		if last, _, err = sub.Submit(ctx, fmt.Append(nil, "explorer entry ", i), client.SubmitOptions{Group: &g}); err != nil {
			t.Fatal(err)
		}
	}
	// An execution record: the tiny increment function, deployed by the
	// admin and invoked by the submitter in group 0.
	admin, err := server.RoleClient(tlsDir, pki.RoleAdmin, lc.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	code, _ := tiny.Module("tinyinc")
	if _, err := admin.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1", Code: code, MemoryPages: 1, TimeoutMillis: 2000}); err != nil {
		t.Fatal(err)
	}
	g0 := 0
	inv, err := sub.Invoke(ctx, "inc", []byte(`{"value":41}`), &g0)
	if err != nil {
		t.Fatal(err)
	}
	invBlock, err := sub.Block(ctx, 0, inv.Receipt.Height, "")
	if err != nil {
		t.Fatal(err)
	}
	invTx := inv.Receipt.Index - (invBlock.LogSize - uint64(invBlock.TxCount))
	// A shared data item with a share in each group, for the data page.
	if _, err := sub.PutData(ctx, []byte("explorer data"), client.PutOptions{Threshold: 1, Shares: 2, DataID: "explorer-item", Description: "quarterly figures"}); err != nil {
		t.Fatal(err)
	}

	auditor, err := pki.LoadCredentials(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "auditor.pem"), filepath.Join(tlsDir, "auditor-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &tamper{next: &http.Transport{TLSClientConfig: auditor.ClientConfig(nil)}}
	ex, err := explorer.New(explorer.Config{Upstream: lc.Addrs[0], Transport: tr}, func(k client.NoteKey) error {
		_, err := client.VerifyNoteKey(k, auditor.Pool())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(ex)
	defer site.Close()

	shots := t.TempDir()
	if os.Getenv("QLEDGER_SCREENSHOTS") == "docs" {
		shots = "../docs"
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1100, 900))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	head, err := sub.Head(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(site.URL+"/#/"), chromedp.WaitVisible(chromedp.CSS("#g1"))); err != nil {
		t.Fatal(err)
	}
	overview, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#main")))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, filepath.Join(shots, "explorer-overview.png"))
	for _, want := range []string{"Group 0", "Group 1", head.LogRoot, "leader", "healthy"} {
		if !strings.Contains(overview, want) {
			t.Errorf("the overview lacks %q:\n%s", want, overview)
		}
	}

	txPage := func(name string) (verdict, checks string) {
		t.Helper()
		url := fmt.Sprintf("%s/#/tx/%s?group=%d&n=%s", site.URL, last.ID, last.Group, name)
		// The verdict of this page, not the one before it (same document).
		sel := chromedp.CSS(`#verdict[data-page$="n=` + name + `"]`)
		if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(sel)); err != nil {
			t.Fatal(err)
		}
		if verdict, err = chromedp.Run(bctx, chromedp.Text(sel)); err != nil {
			t.Fatal(err)
		}
		if checks, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS(".checks"))); err != nil {
			t.Fatal(err)
		}
		screenshot(t, bctx, filepath.Join(shots, "explorer-"+name+".png"))
		return verdict, checks
	}
	verdict, checks := txPage("tx")
	if !strings.Contains(verdict, "Inclusion verified in this browser") || !strings.Contains(checks, "✓ checkpoint signature (Ed25519") ||
		!strings.Contains(checks, "✓ inclusion proof") {
		t.Fatalf("the transaction page did not verify:\n%s\n%s", verdict, checks)
	}
	// The election and executions of the invocation, decoded by the proxy.
	recURL := fmt.Sprintf("%s/#/record/0/%d/%d", site.URL, inv.Receipt.Height, invTx)
	if err := chromedp.Do(bctx, chromedp.Navigate(recURL), chromedp.WaitVisible(chromedp.CSS("#outcome"))); err != nil {
		t.Fatal(err)
	}
	recPage, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#main")))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, filepath.Join(shots, "explorer-record.png"))
	for _, want := range []string{"Execution of inc 1", "Outcome: " + inv.Outcome, "executor (winner)", inv.ResultHash, inv.RequestID} {
		if !strings.Contains(recPage, want) {
			t.Errorf("the record page lacks %q:\n%s", want, recPage)
		}
	}

	// The blocks, block, functions and data pages against the API.
	pageText := func(hash, ready string) string {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(site.URL+hash), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
			t.Fatalf("%s: %v", hash, err)
		}
		text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#main")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	wantAll := func(page, text string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(text, w) {
				t.Errorf("the %s page lacks %q:\n%s", page, w, text)
			}
		}
	}
	head0, err := sub.Head(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	top, err := sub.Block(ctx, 0, head0.Height, "")
	if err != nil {
		t.Fatal(err)
	}
	wantAll("blocks", pageText("#/group/0", `table[aria-label="blocks of group 0"]`),
		fmt.Sprintf("of %d", head0.Height), top.Hash[:12], strconv.FormatUint(top.LogSize, 10))
	blockText := pageText(fmt.Sprintf("#/group/0/block/%d", invBlock.Height), `table[aria-label="transactions"]`)
	wantAll("block", blockText, invBlock.Hash, invBlock.LogRoot, "execution record")
	for _, x := range invBlock.Txs {
		wantAll("block", blockText, x.ID[:12])
	}
	fi, err := sub.Function(ctx, "inc")
	if err != nil {
		t.Fatal(err)
	}
	wantAll("functions", pageText("#/functions", `table[aria-label="functions"]`), "inc", fi.CodeHash[:12], "2000 ms")
	wantAll("data", pageText("#/data", `table[aria-label="shared data items"]`), "explorer-item", "quarterly figures", "0, 1", "anyone")

	// Search by invocation ID: not a transaction, not the auditor's own
	// invocation, so the page asks whose; with the caller it shows the
	// record. "caller/ID" in the search box goes there at once.
	search := func(q string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.CSS("#q"), q), chromedp.Click(chromedp.CSS("#search button"))); err != nil {
			t.Fatal(err)
		}
	}
	search(inv.RequestID)
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#caller")), chromedp.SetValue(chromedp.CSS("#caller"), inv.Caller),
		chromedp.Click(chromedp.CSS("#whose button")), chromedp.WaitVisible(chromedp.CSS("#outcome"))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", inv.Caller + "/" + inv.RequestID} {
		if q != "" {
			if err := chromedp.Do(bctx, chromedp.Navigate(site.URL+"/#/functions"), chromedp.WaitVisible(chromedp.CSS(`table[aria-label="functions"]`))); err != nil {
				t.Fatal(err)
			}
			search(q)
			if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#outcome"))); err != nil {
				t.Fatal(err)
			}
		}
		found, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#main")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(found, inv.RequestID) || !strings.Contains(found, "Outcome: "+inv.Outcome) {
			t.Errorf("search %q did not find the invocation's record:\n%s", q, found)
		}
	}

	if _, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("q").value = ""`)); err != nil {
		t.Fatal(err)
	}

	// The key manager page: node 0's pool and the QKD blocks that filled
	// it, as GET /v1/keymanager reports them.
	if err := ks.WaitKeys(ctx, "client"); err != nil {
		t.Fatal(err)
	}
	km, err := sub.KeyManager(ctx)
	if err != nil || km.KeyManager != client.KeyManagerInProcess || len(km.Pools) != 1 || len(km.Pools[0].Recent) == 0 {
		t.Fatalf("key manager: %+v %v", km, err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(site.URL+"/#/keys"), chromedp.WaitVisible(chromedp.CSS(`#keymanager[data-kind="in_process"]`))); err != nil {
		t.Fatal(err)
	}
	keysPage, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#main")))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, filepath.Join(shots, "explorer-keys.png"))
	first := km.Pools[0].Recent[0]
	for _, want := range []string{"Pool client → gateway", "Mean QBER", fmt.Sprintf("%.2f %%", 100*first.QBER), strconv.FormatUint(first.Block, 10), fmt.Sprintf("%d (%d bits)", first.Keys, first.KeyBits)} {
		if !strings.Contains(keysPage, want) {
			t.Errorf("the key manager page lacks %q:\n%s", want, keysPage)
		}
	}

	tr.on.Store(true)
	verdict, checks = txPage("tampered")
	if !strings.Contains(verdict, "FAILED") || !strings.Contains(checks, "✗ inclusion proof") {
		t.Fatalf("a proof altered in flight was not caught:\n%s\n%s", verdict, checks)
	}

	// On a phone's screen the tables fold into rows: nothing is wider
	// than the screen.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(site.URL+"/#/"),
		chromedp.WaitVisible(chromedp.CSS("#g1"))); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	folded, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#main td")).display`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow || folded != "block" {
		t.Errorf("on a 390-pixel phone screen the overview overflows (%v) or its cells are not folded into rows (display %q)", overflow, folded)
	}
	screenshot(t, bctx, filepath.Join(shots, "explorer-phone.png"))
}

// screenshot saves the whole page as a PNG.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
