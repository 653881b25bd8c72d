package api

import (
	"errors"
	"net/http"

	"qledger/api/client"
	"qledger/cluster"
)

const (
	codeBadRequest     = client.CodeBadRequest
	codeNotFound       = client.CodeNotFound
	codeTooLarge       = client.CodeTooLarge
	codeConflict       = client.CodeConflict
	codeNoLeader       = client.CodeNoLeader
	codeTimeout        = client.CodeTimeout
	codeUnknownOutcome = client.CodeUnknownOutcome
	codeUnavailable    = client.CodeUnavailable
	codeChainCorrupt   = client.CodeChainCorrupt
	codeInternal       = client.CodeInternal
	codeMethod         = client.CodeMethod
	codeForbidden      = client.CodeForbidden
	codeUnauthorized   = client.CodeUnauthorized
	codeRateLimited    = client.CodeRateLimited
	codeInFlight       = client.CodeInFlight
	codeNoAgreement    = client.CodeNoAgreement
	codeNoCandidates   = client.CodeNoCandidates
	codeIDConflict     = "id_conflict"
)

// Errors the handlers raise themselves.
var (
	// errBadRequest marks input the handler itself rejected.
	errBadRequest = errors.New("api: bad request")
	// errInFlight: a request with the same caller and idempotency key is
	// still being processed by this gateway.
	errInFlight = errors.New("api: a request with this idempotency key is in flight")
	// errForbidden: the caller may not read what it asked for.
	errForbidden = errors.New("api: forbidden")
	// errTooManyInvocations: the caller's concurrent invocations are at
	// their cap.
	errTooManyInvocations = errors.New("api: too many concurrent invocations for this caller")
)

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, client.ErrorBody{Error: msg, Code: code})
}

// fail answers err with the status its kind calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if status >= 500 {
		s.logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	writeError(w, status, code, err.Error())
}

// failing adapts a handler that returns its failure instead of answering
// it: a non-nil error is answered with s.fail. Such a handler has written
// nothing when it returns an error.
func (s *Server) failing(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// invokeFailure is the answer to a failed invocation: its status and code,
// and, if its execution record was committed anyway (a disagreement), that
// record, so the client sees the recorded outcome and not only an error.
func invokeFailure(res client.InvokeResponse, err error) (int, client.ErrorBody) {
	status, code := classify(err)
	body := client.ErrorBody{Error: err.Error(), Code: code}
	if res.Receipt.Height > 0 {
		body.Result = &res
	}
	return status, body
}

// failInvoke answers a failed invocation (invokeFailure).
func (s *Server) failInvoke(w http.ResponseWriter, r *http.Request, res client.InvokeResponse, err error) {
	status, body := invokeFailure(res, err)
	if status >= 500 {
		s.logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	writeJSON(w, status, body)
}

// classify maps an error to its HTTP status and wire code.
//
// A recorded disagreement (cluster.ErrNoAgreement) is 409 Conflict: the
// request was valid and was processed to a final, committed outcome — the
// executions conflict — so it is neither the client's fault (4xx for bad
// input) nor the server's (5xx), and a retry returns the same record.
// No candidate (cluster.ErrNoCandidates) is 503: nothing ran or was
// recorded, the group had no live member to elect.
func classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, cluster.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, codeTooLarge
	case errors.Is(err, errInFlight):
		return http.StatusConflict, codeInFlight
	case errors.Is(err, errTooManyInvocations):
		return http.StatusTooManyRequests, codeRateLimited
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, codeForbidden
	case errors.Is(err, errBadRequest), errors.Is(err, cluster.ErrBadRequest):
		return http.StatusBadRequest, codeBadRequest
	case errors.Is(err, cluster.ErrNotFound):
		return http.StatusNotFound, codeNotFound
	case errors.Is(err, cluster.ErrConflict):
		return http.StatusUnprocessableEntity, codeConflict
	case errors.Is(err, cluster.ErrIDConflict):
		return http.StatusConflict, codeIDConflict
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrUnknownGroup):
		return http.StatusServiceUnavailable, codeNoLeader
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return http.StatusServiceUnavailable, codeUnknownOutcome
	case errors.Is(err, cluster.ErrTimeout):
		return http.StatusServiceUnavailable, codeTimeout
	case errors.Is(err, cluster.ErrShutdown), errors.Is(err, cluster.ErrCatchingUp), errors.Is(err, cluster.ErrStopped),
		errors.Is(err, cluster.ErrUnsupported):
		return http.StatusServiceUnavailable, codeUnavailable
	case errors.Is(err, cluster.ErrChainCorrupt):
		return http.StatusServiceUnavailable, codeChainCorrupt
	case errors.Is(err, cluster.ErrNoAgreement):
		return http.StatusConflict, codeNoAgreement
	case errors.Is(err, cluster.ErrNoCandidates):
		return http.StatusServiceUnavailable, codeNoCandidates
	}
	return http.StatusInternalServerError, codeInternal
}
