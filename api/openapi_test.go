package api

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"qledger/api/contract"
)

// docPaths are the OpenAPI paths of a mux pattern: the tile pattern's
// one wildcard spans the six tile path shapes and the six entry bundle
// shapes, the pprof prefix the index
// and the named profiles.
func docPaths(pattern string) []string {
	if pattern == "/debug/pprof/" {
		return []string{pattern, pattern + "{name}"} // the index and each profile
	}
	prefix, ok := strings.CutSuffix(pattern, "/tile/{path...}")
	if !ok {
		return []string{pattern}
	}
	var out []string
	for _, n := range []string{"{N}", "{N2}/{N}", "{N3}/{N2}/{N}"} {
		out = append(out, prefix+"/tile/{L}/"+n, prefix+"/tile/{L}/"+n+".p/{W}",
			prefix+"/tile/entries/"+n, prefix+"/tile/entries/"+n+".p/{W}")
	}
	return out
}

// rolesOf are the roles an access class admits, as the document writes them.
func rolesOf(a access) []string {
	return [...][]string{{"anyone"}, {"auditor", "submitter", "admin", "node"}, {"submitter", "node"}, {"admin", "node"}}[a]
}

// TestOpenAPIMatchesRoutes: every route the server registers is in the
// document with the roles its access class admits, and the document has
// no operation the server does not route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := contract.Load(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(DefaultConfig(), newFakeCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	for _, r := range srv.table {
		for _, p := range docPaths(r.pattern) {
			routed[r.method+" "+p] = true
			item := doc.Paths.Value(p)
			if item == nil || item.GetOperation(r.method) == nil {
				t.Errorf("%s %s is routed but not in api/openapi.yaml", r.method, p)
				continue
			}
			var roles []string
			raw, _ := json.Marshal(item.GetOperation(r.method).Extensions["x-qledger-roles"])
			_ = json.Unmarshal(raw, &roles)
			if !slices.Equal(roles, rolesOf(r.access)) {
				t.Errorf("%s %s: the document gives roles %v, the server admits %v", r.method, p, roles, rolesOf(r.access))
			}
		}
	}
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !routed[method+" "+p] {
				t.Errorf("api/openapi.yaml has %s %s, which the server does not route", method, p)
			}
		}
	}
}

// TestOpenAPIServed: GET /v1/openapi.json is the document as JSON.
func TestOpenAPIServed(t *testing.T) {
	srv, err := New(DefaultConfig(), newFakeCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc.OpenAPI != "3.1.0" || doc.Paths["/v1/groups/{g}/checkpoint"] == nil {
		t.Fatalf("GET /v1/openapi.json: %d %.200s", w.Code, w.Body.String())
	}
	if _, err := contract.Load(w.Body.Bytes()); err != nil {
		t.Fatalf("the served JSON does not load: %v", err)
	}
}
