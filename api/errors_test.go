package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"qledger/api/client"
	"qledger/cluster"
)

// TestClassify pins the status and code clients see for each error kind,
// written out as they appear on the wire (not through the constants the
// code uses), so renaming a code or changing a status fails here.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&http.MaxBytesError{Limit: 1}, 413, "too_large"},
		{fmt.Errorf("put: %w", cluster.ErrTooLarge), 413, "too_large"},
		{fmt.Errorf("%w: key k", errInFlight), 409, "in_flight"},
		{errTooManyInvocations, 429, "rate_limited"},
		{badRequest("no"), 400, "bad_request"},
		{cluster.ErrBadRequest, 400, "bad_request"},
		{cluster.ErrNotFound, 404, "not_found"},
		{cluster.ErrConflict, 422, "idempotency_conflict"},
		{fmt.Errorf("join: %w", cluster.ErrIDConflict), 409, "id_conflict"},
		{cluster.ErrNoLeader, 503, "no_leader"},
		{cluster.ErrNotLeader, 503, "no_leader"},
		{cluster.ErrUnknownGroup, 503, "no_leader"},
		{cluster.ErrUnknownOutcome, 503, "unknown_outcome"},
		{cluster.ErrTimeout, 503, "timeout"},
		{cluster.ErrShutdown, 503, "unavailable"},
		{fmt.Errorf("%w: fsm: store failed, applying stopped: no space left on device", cluster.ErrStopped), 503, "unavailable"},
		{fmt.Errorf("%w: n1: ok 00; n2: ok 01 (recorded at height 3)", cluster.ErrNoAgreement), 409, "no_agreement"},
		{cluster.ErrNoCandidates, 503, "no_candidates"},
		{fmt.Errorf("something else"), 500, "internal"},
	} {
		if st, code := classify(c.err); st != c.status || code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, st, code, c.status, c.code)
		}
	}
}

// TestInvokeFailureBody: a failed invocation whose record was committed
// carries it in the error body; one that recorded nothing does not.
func TestInvokeFailureBody(t *testing.T) {
	rec := client.InvokeResponse{RequestID: strings.Repeat("ab", 32), Outcome: "conflict", Conflict: "n1: ok 00; n2: ok 01",
		Receipt: client.Receipt{Height: 3}}
	st, body := invokeFailure(rec, fmt.Errorf("%w: n1 and n2 differ", cluster.ErrNoAgreement))
	js, _ := json.Marshal(body)
	var wire struct {
		Code   string          `json:"code"`
		Error  string          `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(js, &wire); err != nil {
		t.Fatal(err)
	}
	if st != 409 || wire.Code != "no_agreement" || !strings.Contains(wire.Error, "differ") ||
		!strings.Contains(string(wire.Result), `"outcome":"conflict"`) || !strings.Contains(string(wire.Result), `"height":3`) {
		t.Fatalf("disagreement: %d %s", st, js)
	}
	st, body = invokeFailure(client.InvokeResponse{}, cluster.ErrNoCandidates)
	js, _ = json.Marshal(body)
	if st != 503 || strings.Contains(string(js), `"result"`) {
		t.Fatalf("no candidates: %d %s", st, js)
	}
}
