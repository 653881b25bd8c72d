package api

import (
	"fmt"
	"net/http"
	"testing"

	"qledger/cluster"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("join: %w", cluster.ErrIDConflict), http.StatusConflict, codeIDConflict},
		{cluster.ErrConflict, http.StatusUnprocessableEntity, codeConflict},
		{fmt.Errorf("%w: key k", errInFlight), http.StatusConflict, codeInFlight},
		{errTooManyInvocations, http.StatusTooManyRequests, codeRateLimited},
		{cluster.ErrNoLeader, http.StatusServiceUnavailable, codeNoLeader},
		{cluster.ErrNotFound, http.StatusNotFound, codeNotFound},
		{fmt.Errorf("something else"), http.StatusInternalServerError, codeInternal},
	} {
		if st, code := classify(c.err); st != c.status || code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, st, code, c.status, c.code)
		}
	}
}
