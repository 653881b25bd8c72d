package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qledger/api"
	"qledger/api/client"
	"qledger/cluster"
	"qledger/sharing"
)

// TestSharedDataAcrossGroups stores items split across 5 groups, reads
// them back while 2 groups are down, enforces the reader list, and fails
// clearly once fewer than t groups answer.
func TestSharedDataAcrossGroups(t *testing.T) {
	l := startLocal(t, 5, 1, nil)
	_, c := serveAPI(t, l.Nodes[0])
	var err error
	ctx := context.Background()

	big := make([]byte, 3<<20) // shares of ~1 MiB: two segments each
	rand.Read(big)
	copy(big, []byte{0, 0, 0}) // leading zeros survive
	small := append([]byte{0, 0}, []byte("a small secret with leading zeros")...)
	type item struct {
		name string
		data []byte
		opt  client.PutOptions
	}
	items := []item{
		{"dispersal", big, client.PutOptions{Threshold: 3, Description: "quarterly report"}},
		{"paper", small, client.PutOptions{Threshold: 3, Scheme: "paper", Description: "paper mode"}},
		{"restricted", small, client.PutOptions{Threshold: 2, Readers: []string{"alice"}, Description: "for alice"}},
	}
	ids := map[string]string{}
	for _, it := range items {
		res, err := c.PutData(ctx, it.data, it.opt)
		if err != nil {
			t.Fatalf("%s: put: %v", it.name, err)
		}
		if res.Shares != 5 {
			t.Fatalf("%s: %d shares", it.name, res.Shares)
		}
		ids[it.name] = res.DataID
	}
	// Storage per node in dispersal mode is about |D|/t.
	if l, err := c.ListData(ctx, "quarterly"); err != nil || len(l.Items) != 1 || len(l.Items[0].Groups) != 5 {
		t.Fatalf("list: %+v %v", l, err)
	}
	// Two groups go down.
	for _, n := range l.Nodes {
		if n.Group() >= 3 {
			n.Close()
		}
	}
	for _, it := range items {
		caller := ""
		if it.name == "restricted" {
			caller = "alice"
		}
		got, rep, err := c.GetData(ctx, ids[it.name], caller)
		if err != nil {
			t.Fatalf("%s: get with groups 3 and 4 down: %v", it.name, err)
		}
		if !bytes.Equal(got, it.data) {
			t.Fatalf("%s: recovered data differs", it.name)
		}
		if len(rep.Used) != 3 || len(rep.Failed) != 2 {
			t.Fatalf("%s: report %+v", it.name, rep)
		}
	}
	// Not on the reader list: no group serves the share.
	_, _, err = c.GetData(ctx, ids["restricted"], "bob")
	if !errors.Is(err, client.ErrTooFewGroups) || !strings.Contains(err.Error(), "not on the reader list") {
		t.Fatalf("reader list: %v", err)
	}
	// Exported shares recover offline.
	dir := t.TempDir()
	shares, _, err := c.FetchShares(ctx, ids["paper"], "", 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shares {
		b, _ := sh.MarshalJSON()
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("share-%d.json", sh.Index)), b, 0o600)
	}
	var back []*sharing.Share
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		var sh sharing.Share
		if err := sh.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		back = append(back, &sh)
	}
	if got, _, err := sharing.Recover(back); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("offline recovery: %v", err)
	}
	// A third group goes down: fewer than t answer, and the error says which.
	for _, n := range l.Nodes {
		if n.Group() == 2 {
			n.Close()
		}
	}
	_, _, err = c.GetData(ctx, ids["dispersal"], "")
	if !errors.Is(err, client.ErrTooFewGroups) || !strings.Contains(err.Error(), "groups [0 1] answered") {
		t.Fatalf("too few groups: %v", err)
	}
}

// TestSharedDataStreaming stores an item of several segments per share
// with PutReader and reads it back with GetDataTo, into a file and into a
// plain writer, with a group down; the temporary share files are gone
// afterwards.
func TestSharedDataStreaming(t *testing.T) {
	l := startLocal(t, 3, 1, nil)
	_, c := serveAPI(t, l.Nodes[0])
	ctx := context.Background()
	tmp, spool := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)

	data := make([]byte, 2<<20) // shares of ~1 MiB: two segments each
	rand.Read(data)
	res, err := c.PutReader(ctx, bytes.NewReader(data), client.PutOptions{Threshold: 2, Description: "streamed", TempDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	if res.Length != int64(len(data)) || len(res.Receipts) != 3 || len(res.Receipts[0]) != 2 {
		t.Fatalf("put: length %d, receipts %v", res.Length, res.Receipts)
	}
	for _, n := range l.Nodes {
		if n.Group() == 1 {
			n.Close()
		}
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := c.GetDataTo(ctx, f, res.DataID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) || rep.Length != int64(len(data)) || !rep.DigestChecked || len(rep.Used) != 2 || rep.Failed[1] == "" {
		t.Fatalf("recovered %d bytes (report %+v)", len(got), rep)
	}
	var buf bytes.Buffer
	if _, err := c.GetDataTo(ctx, &buf, res.DataID, ""); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("into a buffer: %v", err)
	}
	for _, dir := range []string{tmp, spool} {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("%d files left in %s", len(ents), dir)
		}
	}
}

// TestSharedDataTamperAndBadInput: a node that alters a share in transit
// is caught by the proof check and the share replaced from another group;
// bad parameters get clear errors.
func TestSharedDataTamperAndBadInput(t *testing.T) {
	l := startLocal(t, 4, 1, nil)
	ts, _ := serveAPI(t, l.Nodes[0])
	// A proxy that flips a byte in every segment of share 1.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, ts.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/shares/1") {
			var dl client.ShareDownload
			if json.Unmarshal(body, &dl) == nil {
				for i := range dl.Segments {
					b := dl.Segments[i].TxBytes
					b[len(b)-1] ^= 1
				}
				body, _ = json.Marshal(dl)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	defer proxy.Close()
	c, _ := client.New(proxy.URL, nil)
	ctx := context.Background()
	data := []byte("tamper-evident shared data")
	res, err := c.PutData(ctx, data, client.PutOptions{Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, rep, err := c.GetData(ctx, res.DataID, "")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get through a tampering node: %v", err)
	}
	if _, bad := rep.Failed[1]; !bad || !strings.Contains(rep.Failed[1], "verification failed") {
		t.Fatalf("the tampered share was not rejected: %+v", rep)
	}
	for _, u := range rep.Used {
		if u == 1 {
			t.Fatal("the tampered share was used")
		}
	}
	// Bad input.
	for name, opt := range map[string]client.PutOptions{
		"t > n":        {Threshold: 5},
		"t < 1":        {Threshold: 0, Shares: 4},
		"n > groups":   {Threshold: 2, Shares: 6},
		"bad data ID":  {Threshold: 2, DataID: "no spaces allowed"},
		"unknown mode": {Threshold: 2, Scheme: "rot13"},
	} {
		if _, err := c.PutData(ctx, data, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := c.PutData(ctx, nil, client.PutOptions{Threshold: 2}); !errors.Is(err, sharing.ErrEmptyData) {
		t.Errorf("empty data: %v", err)
	}
	if _, _, err := c.GetData(ctx, "no-such-item", ""); !errors.Is(err, client.ErrTooFewGroups) {
		t.Errorf("unknown item: %v", err)
	}
}

// TestSharedDataPagedAcrossGroups reads a share of more segments than one
// page through the API node of another group, which relays every page
// from the share's group over internal RPC: the unpaged read is refused
// with 413 saying to page, the client pages and recovers the data.
func TestSharedDataPagedAcrossGroups(t *testing.T) {
	l := startLocal(t, 2, 1, nil)
	var api1 *cluster.Node
	for _, n := range l.Nodes {
		if n.Group() == 1 {
			api1 = n
		}
	}
	ts, c := serveAPI(t, api1)
	ctx := context.Background()

	// One share, in group 0, of more than one page of segments.
	data := make([]byte, cluster.MaxItemPageSegments*768<<10+100<<10)
	rand.Read(data)
	res, err := c.PutData(ctx, data, client.PutOptions{Threshold: 1, Shares: 1, Description: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	if segs := len(res.Receipts[0]); segs <= cluster.MaxItemPageSegments {
		t.Fatalf("the share has %d segments, want more than %d", segs, cluster.MaxItemPageSegments)
	}
	resp, err := http.Get(ts.URL + "/v1/data/" + res.DataID + "/shares/0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "fetch it in pages with ?from=K") {
		t.Fatalf("unpaged read of a large share: %d %s", resp.StatusCode, body)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := c.GetDataTo(ctx, f, res.DataID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, data) || !rep.DigestChecked || rep.Item.Segments != len(res.Receipts[0]) {
		t.Fatalf("recovered %d bytes of %d (report %+v)", len(got), len(data), rep)
	}
}

// serveAPI serves n's API (no CA) on a test server, closed at the end of
// the test, and returns it with a client for it.
func serveAPI(t *testing.T, n *cluster.Node) (*httptest.Server, *client.Client) {
	t.Helper()
	srv, err := api.New(api.DefaultConfig(), n)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts, c
}
