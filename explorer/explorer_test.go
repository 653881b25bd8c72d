package explorer_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"qledger/api/client"
	"qledger/explorer"
)

// upstream is a fake node that records what reached it.
func upstream(t *testing.T, seen *[]string) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*seen = append(*seen, r.Method+" "+r.URL.Path)
		if strings.HasSuffix(r.URL.Path, "/checkpoint/key") {
			_ = json.NewEncoder(w).Encode(client.NoteKey{Origin: "o", VerifierKey: "o+00000000+AQ", Node: "n"})
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, h http.Handler, method, host, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://"+host+path, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestProxyIsReadOnly: only GETs of the API's read endpoints reach the
// node; writes, operations, snapshots and unknown paths are refused, and
// so is any request not addressed to a loopback name.
func TestProxyIsReadOnly(t *testing.T) {
	var seen []string
	up := upstream(t, &seen)
	ex, err := explorer.New(explorer.Config{Upstream: up.URL}, func(client.NoteKey) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, host, path string
		status             int
	}{
		{"GET", "127.0.0.1:8088", "/v1/cluster", 200},
		{"GET", "127.0.0.1:8088", "/v1/keymanager", 200},
		{"GET", "127.0.0.1:8088", "/v1/invocations/" + strings.Repeat("cd", 32) + "?caller=submitter:alice", 200},
		{"GET", "localhost:8088", "/v1/groups/0/blocks/3", 200},
		{"GET", "[::1]:8088", "/v1/groups/1/tile/0/x001/002.p/3", 200},
		{"GET", "127.0.0.1:8088", "/v1/tx/" + strings.Repeat("ab", 32), 200},
		{"POST", "127.0.0.1:8088", "/v1/tx", 405},
		{"DELETE", "127.0.0.1:8088", "/v1/cluster/nodes/x", 405},
		{"GET", "127.0.0.1:8088", "/v1/groups/0/snapshot", 404},
		{"GET", "127.0.0.1:8088", "/metrics", 404},
		{"GET", "127.0.0.1:8088", "/v1/groups/0/../../metrics", 404},
		{"GET", "127.0.0.1:8088", "/v1/groups/0/tile/../snapshot", 404},
		{"GET", "evil.example:8088", "/v1/cluster", 403},
		{"GET", "192.168.1.5:8088", "/", 403},
		{"POST", "127.0.0.1:8088", "/", 405},
	}
	for _, c := range cases {
		if w := get(t, ex, c.method, c.host, c.path); w.Code != c.status {
			t.Errorf("%s %s (Host %s): %d, want %d: %s", c.method, c.path, c.host, w.Code, c.status, w.Body)
		}
	}
	for _, s := range seen {
		if !strings.HasPrefix(s, "GET /v1/") || strings.Contains(s, "snapshot") {
			t.Errorf("reached the node: %s", s)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d requests reached the node, want 6: %v", len(seen), seen)
	}
}

// TestPagesEmbedded: the pages come from the binary, with a content
// security policy that allows no other origin.
func TestPagesEmbedded(t *testing.T) {
	var seen []string
	ex, err := explorer.New(explorer.Config{Upstream: upstream(t, &seen).URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		w := get(t, ex, "GET", "127.0.0.1", p)
		if w.Code != 200 || w.Body.Len() == 0 || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d, %d bytes, CSP %q", p, w.Code, w.Body.Len(), w.Header().Get("Content-Security-Policy"))
		}
		if strings.Contains(w.Body.String(), "https://") {
			t.Errorf("%s refers to another origin", p)
		}
	}
}

// TestNoteKeyNeedsEndorsement: a note key whose endorsement does not
// verify never reaches the page.
func TestNoteKeyNeedsEndorsement(t *testing.T) {
	var seen []string
	up := upstream(t, &seen)
	for _, c := range []struct {
		verify func(client.NoteKey) error
		status int
	}{
		{func(client.NoteKey) error { return nil }, 200},
		{func(client.NoteKey) error { return errors.New("not signed by the CA") }, 502},
		{nil, 502},
	} {
		ex, err := explorer.New(explorer.Config{Upstream: up.URL}, c.verify)
		if err != nil {
			t.Fatal(err)
		}
		w := get(t, ex, "GET", "127.0.0.1", "/v1/groups/0/checkpoint/key")
		if w.Code != c.status || c.status == 200 && w.Header().Get("X-Qledger-Endorsement") != "verified" {
			t.Errorf("key with verify %v: %d %s, want %d", c.verify != nil, w.Code, w.Body, c.status)
		}
	}
}

// TestRecordNeedsCoordinates: the record view refuses malformed
// coordinates without asking the node.
func TestRecordNeedsCoordinates(t *testing.T) {
	var seen []string
	ex, err := explorer.New(explorer.Config{Upstream: upstream(t, &seen).URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "?group=0&height=1", "?group=-1&height=1&tx=0", "?group=0&height=x&tx=0"} {
		if w := get(t, ex, "GET", "127.0.0.1", "/x/record"+q); w.Code != 400 {
			t.Errorf("/x/record%s: %d %s", q, w.Code, w.Body)
		}
	}
	if len(seen) != 0 {
		t.Errorf("reached the node: %v", seen)
	}
}
