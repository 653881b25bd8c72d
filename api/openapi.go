package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the API's OpenAPI 3.1 document: every endpoint, its
// parameters, bodies, statuses, error codes and the roles it admits. The
// test suite checks every exchange of its API and integration tests
// against it (package api/contract).
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the API's OpenAPI document as YAML.
func OpenAPI() []byte { return append([]byte(nil), openAPIYAML...) }

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
})

// contractWrap, when set (builds with the "contract" tag), wraps every
// server's handler in the OpenAPI contract check.
var contractWrap func(http.Handler) http.Handler

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := openAPIJSON()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
