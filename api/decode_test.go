package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/function"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

func TestDecodeStrict(t *testing.T) {
	type inner struct {
		X int `json:"x"`
	}
	type body struct {
		A int     `json:"a"`
		B string  `json:"b"`
		I []inner `json:"i"`
	}
	cases := []struct {
		name, in string
		want     error // nil, errBadRequest, or a *http.MaxBytesError (tooLarge)
		msg      string
	}{
		{"one object", `{"a":1,"b":"x"}`, nil, ""},
		{"trailing white space", "{\"a\":1}\n\t ", nil, ""},
		{"second object", `{"a":1}{"a":2}`, errBadRequest, "trailing data"},
		{"second value", `{"a":1} 7`, errBadRequest, "trailing data"},
		{"trailing garbage", `{"a":1}x`, errBadRequest, "trailing data"},
		{"stray brace", `{"a":1}}`, errBadRequest, "trailing data"},
		{"unknown field", `{"a":1,"c":2}`, errBadRequest, "unknown field"},
		{"field name in another case", `{"A":1}`, errBadRequest, `unknown field "A"`},
		{"nested field name in another case", `{"i":[{"x":1},{"X":2}]}`, errBadRequest, `unknown field "X"`},
		{"nested", `{"i":[{"x":1}]}`, nil, ""},
		{"empty", ``, errBadRequest, "malformed JSON body"},
		{"wrong type", `{"a":"1"}`, errBadRequest, "malformed JSON body"},
		{"cut short", `{"a":1`, errBadRequest, "malformed JSON body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v body
			err := decodeStrict(strings.NewReader(c.in), &v)
			if !errors.Is(err, c.want) || c.want != nil && !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("decodeStrict(%q) = %v, want %v with %q", c.in, err, c.want, c.msg)
			}
		})
	}
	// A body over the limit stays a size error, in the value or after it.
	for _, in := range []string{`{"a":1,"b":"` + strings.Repeat("x", 64) + `"}`, `{"a":1}` + strings.Repeat(" ", 64) + "x"} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(in))
		var v body
		err := decodeStrict(http.MaxBytesReader(rec, r.Body, 16), &v)
		if !tooLarge(err) || errors.Is(err, errBadRequest) {
			t.Fatalf("over the limit: %v, want the *http.MaxBytesError", err)
		}
	}
}

// writeCounter is the fuzz fake cluster, plus a scaler and a key source,
// that records every call that would change something.
type writeCounter struct {
	*fakeCluster
	mu    sync.Mutex
	calls []string
}

func (c *writeCounter) note(call string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

func (c *writeCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

func (c *writeCounter) Submit(ctx context.Context, tx chain.Tx) (cluster.Receipt, error) {
	c.note("Submit")
	return c.fakeCluster.Submit(ctx, tx)
}

func (c *writeCounter) Join(ctx context.Context, node cluster.NodeInfo) (cluster.JoinResponse, error) {
	c.note("Join")
	return c.fakeCluster.Join(ctx, node)
}

func (c *writeCounter) Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	c.note("Invoke")
	return c.fakeCluster.Invoke(ctx, req)
}

func (c *writeCounter) CheckDeployment(ctx context.Context, d function.Deployment) error {
	c.note("CheckDeployment")
	return nil
}

func (c *writeCounter) ScaleExecutors(ctx context.Context, k int) (int, error) {
	c.note("ScaleExecutors")
	return k, nil
}

// TestTrailingDataRefusedEverywhere: every endpoint with a JSON body
// answers a valid body followed by more data with 400 bad_request naming
// the trailing data, and calls nothing that writes; the same body alone
// gets past decoding (and, where the fakes allow, writes).
func TestTrailingDataRefusedEverywhere(t *testing.T) {
	fake := &writeCounter{fakeCluster: newFakeCluster(t)}
	cfg := DefaultConfig()
	cfg.Scaler = fake
	cfg.Keys = &KeyChannel{GatewaySAE: "gateway", KME: keySourceFunc(func(ctx context.Context, master string, ids []string) ([]kme.Key, error) {
		fake.note("DecKeys")
		return nil, errors.New("test: no keys")
	})}
	srv, err := New(cfg, fake)
	if err != nil {
		t.Fatal(err)
	}
	_, hello, err := session.NewClientHandshake("123e4567-e89b-42d3-a456-426614174000", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	hash := strings.Repeat("ab", 32)
	endpoints := []struct {
		path, body string
		writes     bool // the body alone reaches a call that writes
	}{
		{"/v1/tx", `{"payload":"aGk=","group":1}`, true},
		{"/v1/data/d1/shares/0", jsonOf(client.ShareUpload{Shares: 2, Threshold: 2, Scheme: "dispersal", Segments: 1, ShareSize: 2, ShareHash: hash, Bytes: []byte("hi")}), true},
		{"/v1/functions", jsonOf(client.DeployRequest{Name: "f", Version: "1", Code: []byte("\x00asm\x01\x00\x00\x00")}), true},
		{"/v1/functions/f/invoke", `{"input":"aGk=","group":0}`, true},
		{"/v1/cluster/join", jsonOf(client.JoinRequest{ID: hash, Addr: "127.0.0.1:1"}), true},
		{"/v1/cluster/scale", `{"executors":1}`, true},
		{"/v1/cluster/scrub", `{"group":0}`, false},
		{"/v1/cluster/repair", `{"group":0}`, false},
		{"/v1/groups/0/leader/transfer", `{"to":""}`, false},
		{"/v1/session", jsonOf(client.SessionOpen{MasterSAE: "client", Hello: hello}), true},
		{"/v1/session/finish", jsonOf(session.ClientFinish{Version: 1, SessionID: []byte("s1"), Confirm: []byte("c")}), false},
	}
	post := func(path, body string) (int, client.ErrorBody) {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
		var e client.ErrorBody
		if w.Code >= 300 {
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("POST %s: %d with a body that is not the JSON error: %q", path, w.Code, w.Body.String())
			}
		}
		return w.Code, e
	}
	for _, ep := range endpoints {
		t.Run(ep.path, func(t *testing.T) {
			for _, trailer := range []string{`{}`, ` {"a":1}`, "\n7", "x", `}`} {
				status, e := post(ep.path, ep.body+trailer)
				if status != http.StatusBadRequest || e.Code != codeBadRequest || !strings.Contains(e.Error, "trailing data") {
					t.Fatalf("body + %q: %d %+v, want 400 bad_request naming the trailing data", trailer, status, e)
				}
				if calls := fake.take(); len(calls) != 0 {
					t.Fatalf("body + %q was refused but called %v", trailer, calls)
				}
			}
			status, e := post(ep.path, ep.body+"\n")
			if strings.Contains(e.Error, "trailing data") || strings.Contains(e.Error, "malformed JSON") {
				t.Fatalf("the body alone was refused by the decoder: %d %+v", status, e)
			}
			if calls := fake.take(); ep.writes != (len(calls) > 0) {
				t.Fatalf("the body alone (%d %+v) called %v; want writes=%v", status, e, calls, ep.writes)
			}
		})
	}
}
