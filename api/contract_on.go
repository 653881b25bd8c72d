//go:build contract

package api

import (
	"net/http"
	"sync"

	"qledger/api/contract"
)

// In the test suite's builds every server checks its exchanges against
// the OpenAPI document (see package api/contract).
func init() {
	checker := sync.OnceValue(func() *contract.Checker {
		c, err := contract.New(openAPIYAML)
		if err != nil {
			panic(err) // the embedded document is broken: no test can run
		}
		return c
	})
	contractWrap = func(h http.Handler) http.Handler { return checker().Handler(h) }
}
