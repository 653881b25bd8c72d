// Package contract checks HTTP traffic against the API's OpenAPI document
// with kin-openapi's validator, so that the document is a tested contract
// rather than a description that drifts.
//
// A Checker wraps a handler: it validates each request and the response
// the handler gives, and when the exchange breaks the contract it records
// a violation and answers 500 in place of the response. The rules:
//
//   - a request for a path and method the document does not list must be
//     refused with a documented 404 or 405 error body;
//   - a request the document rejects (a bad parameter or body) must be
//     answered with a 4xx status its operation documents;
//   - every response must have a status its operation lists, and a body and
//     headers that validate against that response's schema (responses of a
//     fixed shape forbid unlisted fields).
//
// The api package wraps its servers in a Checker in builds with the
// "contract" tag (the test suite's); Main makes a test binary fail when any
// exchange of its run broke the contract.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Errors of the package.
var (
	// ErrDocument: the OpenAPI document does not load or validate.
	ErrDocument = errors.New("contract: invalid OpenAPI document")
	// ErrViolation: an exchange broke the contract.
	ErrViolation = errors.New("contract: violation")
)

// MaxCheckedBody is the largest body whose contents a Checker validates.
// A larger one (multi-megabyte share pages and uploads) is checked for its
// status, content type and headers only: validating it would cost seconds
// under the race detector and time the test's client out, and the same
// schemas are checked on the smaller bodies of other exchanges.
const MaxCheckedBody = 1 << 20

// ViolationCode is the error code of the 500 answer a Checker gives in
// place of a response that broke the contract.
const ViolationCode = "contract_violation"

func init() {
	// The pprof index is HTML; its body is checked as text.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// Checker validates exchanges against one OpenAPI document. It is safe for
// concurrent use.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
}

// Load parses and validates an OpenAPI document (YAML or JSON).
func Load(spec []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDocument, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDocument, err)
	}
	return doc, nil
}

// New returns a Checker for the document spec. Paths match on any host:
// the document's servers are examples, not where tests listen.
func New(spec []byte) (*Checker, error) {
	doc, err := Load(spec)
	if err != nil {
		return nil, err
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDocument, err)
	}
	return &Checker{doc: doc, router: router}, nil
}

// Exchange is one request and the response it got.
type Exchange struct {
	Request *http.Request
	// RequestBody is the request's body (the Request's own is not read).
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Check reports, wrapped in ErrViolation, how the exchange breaks the
// contract, or nil.
func (c *Checker) Check(x Exchange) error {
	req := x.Request.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	if len(x.RequestBody) > 0 && req.Header.Get("Content-Type") == "" {
		// The server reads a body without a Content-Type as JSON, as the
		// document says.
		req.Header.Set("Content-Type", "application/json")
	}
	where := x.Request.Method + " " + x.Request.URL.RequestURI()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if refusal(x) {
			return nil
		}
		return fmt.Errorf("%w: %s: undocumented endpoint answered %d (%v)", ErrViolation, where, x.Status, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		ExcludeRequestBody:    len(x.RequestBody) > MaxCheckedBody,
		ExcludeResponseBody:   len(x.Body) > MaxCheckedBody,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && (x.Status < 400 || x.Status >= 500) {
		return fmt.Errorf("%w: %s: the server answered %d to a request the contract rejects: %v", ErrViolation, where, x.Status, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Status,
		Header:                 x.Header,
		Body:                   io.NopCloser(bytes.NewReader(x.Body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%w: %s: response %d: %v", ErrViolation, where, x.Status, err)
	}
	return nil
}

// refusal reports whether an exchange on an undocumented endpoint is the
// server refusing it: a JSON error with code not_found or
// method_not_allowed, or a redirect from an unclean path to its clean form.
func refusal(x Exchange) bool {
	if p := x.Request.URL.Path; p != path.Clean(p) && x.Status >= 300 && x.Status < 400 {
		return true // the mux redirects to the clean path
	}
	if x.Status != http.StatusNotFound && x.Status != http.StatusMethodNotAllowed {
		return false
	}
	b := string(x.Body)
	return strings.HasPrefix(x.Header.Get("Content-Type"), "application/json") &&
		(strings.Contains(b, `"code":"not_found"`) || strings.Contains(b, `"code":"method_not_allowed"`))
}

// Handler wraps h: every exchange is checked, and one that breaks the
// contract is recorded (Violations) and answered 500 with ViolationCode
// instead. The response is buffered until h returns; a handler that
// aborts (panics with http.ErrAbortHandler) still aborts.
func (c *Checker) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		err := c.Check(Exchange{Request: r, RequestBody: body, Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
		if err != nil {
			record(err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "{\"error\":%q,\"code\":%q}\n", err.Error(), ViolationCode)
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// recorder buffers a response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// Flush does nothing: the response goes out once checked.
func (r *recorder) Flush() {}

var (
	mu         sync.Mutex
	violations []string
)

func record(err error) {
	mu.Lock()
	defer mu.Unlock()
	violations = append(violations, err.Error())
	fmt.Fprintln(os.Stderr, "CONTRACT VIOLATION:", err)
}

// Violations returns every violation any Checker's Handler recorded in
// this process.
func Violations() []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), violations...)
}

// Runner is what a test binary's TestMain has: *testing.M.
type Runner interface{ Run() int }

// Main runs the tests and turns a passing run into a failing one (exit
// code 1) when any exchange broke the contract, listing the violations.
// Use it as TestMain's body: os.Exit(contract.Main(m)).
func Main(m Runner) int {
	code := m.Run()
	if v := Violations(); len(v) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d exchanges broke the OpenAPI contract (api/openapi.yaml):\n", len(v))
		for _, s := range v {
			fmt.Fprintln(os.Stderr, "  ", s)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}
