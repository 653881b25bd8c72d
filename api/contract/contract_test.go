package contract_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"qledger/api"
	"qledger/api/contract"
)

func checker(t *testing.T) *contract.Checker {
	t.Helper()
	c, err := contract.New(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const goodHead = `{"version":1,"group":0,"height":1,"hash":"` + hex64 + `","prev_hash":"` + hex64 + `","timestamp":1,` +
	`"tx_root":"` + hex64 + `","tx_count":1,"log_size":1,"log_root":"` + hex64 + `"}`

const hex64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func exchange(method, target, reqBody string, status int, body string) contract.Exchange {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	r := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return contract.Exchange{Request: r, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

// TestCheckerFlagsBreaches shows the checker can fail: each breach of the
// document is flagged, and the conforming exchanges beside them are not.
func TestCheckerFlagsBreaches(t *testing.T) {
	c := checker(t)
	cases := []struct {
		name string
		x    contract.Exchange
		bad  bool
	}{
		{"conforming head", exchange("GET", "/v1/groups/0/head", "", 200, goodHead), false},
		{"undocumented response field", exchange("GET", "/v1/groups/0/head", "", 200, strings.TrimSuffix(goodHead, "}")+`,"extra":1}`), true},
		{"missing response field", exchange("GET", "/v1/groups/0/head", "", 200, strings.Replace(goodHead, `"tx_count":1,`, "", 1)), true},
		{"wrongly typed field", exchange("GET", "/v1/groups/0/head", "", 200, strings.Replace(goodHead, `"height":1`, `"height":"1"`, 1)), true},
		{"undocumented status", exchange("GET", "/healthz", "", 418, `{"error":"x","code":"internal"}`), true},
		{"documented error", exchange("GET", "/v1/groups/9/head", "", 404, `{"error":"no group 9","code":"not_found"}`), false},
		{"error with the wrong code for its status", exchange("GET", "/v1/groups/9/head", "", 404, `{"error":"x","code":"timeout"}`), true},
		{"undocumented endpoint served", exchange("GET", "/v1/secret", "", 200, `{}`), true},
		{"undocumented endpoint refused", exchange("GET", "/v1/secret", "", 404, `{"error":"no such endpoint","code":"not_found"}`), false},
		{"invalid request accepted", exchange("POST", "/v1/tx", `{"payload":"","extra":1}`, 200, `{"id":"`+hex64+`","group":0,"height":1,"index":0}`), true},
		{"undocumented field in a body over MaxCheckedBody: not looked at", exchange("GET", "/v1/groups/0/head", "", 200,
			strings.TrimSuffix(goodHead, "}")+`,"extra":"`+strings.Repeat("x", contract.MaxCheckedBody)+`"}`), false},
		{"undocumented status of a large body", exchange("GET", "/healthz", "", 418, strings.Repeat(" ", contract.MaxCheckedBody+1)), true},
		{"invalid request refused", exchange("POST", "/v1/tx", `{"payload":"","extra":1}`, 400, `{"error":"unknown field","code":"bad_request"}`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(tc.x)
			if tc.bad != (err != nil) || err != nil && !errors.Is(err, contract.ErrViolation) {
				t.Fatalf("Check = %v, want a violation: %v", err, tc.bad)
			}
		})
	}
}

// TestHandlerReplacesBreach: a wrapped handler whose answer breaks the
// contract is answered 500 with the violation code, and it is recorded.
func TestHandlerReplacesBreach(t *testing.T) {
	c := checker(t)
	before := len(contract.Violations())
	h := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","uptime":3}`)
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), contract.ViolationCode) || !strings.Contains(string(b), "uptime") {
		t.Fatalf("got %d %s, want 500 naming the violation", resp.StatusCode, b)
	}
	if got := len(contract.Violations()); got != before+1 {
		t.Fatalf("%d violations recorded, want %d", got, before+1)
	}
}
