package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"qledger/election"
)

// DeployRequest is the body of POST /v1/functions.
type DeployRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Code is the WebAssembly module (base64 in JSON).
	Code []byte `json:"code"`
	// Optional limits; zero keeps the defaults (256 pages, 5 s, 1 MiB).
	MemoryPages    uint32 `json:"memory_pages,omitempty"`
	TimeoutMillis  int64  `json:"timeout_ms,omitempty"`
	MaxOutputBytes uint32 `json:"max_output_bytes,omitempty"`
	// Unverified is what a call does when no verifier can run it:
	// "accept" (default: the executor's result alone, marked unverified)
	// or "refuse".
	Unverified string `json:"unverified,omitempty"`
}

// DeployResponse answers a deploy: one receipt per group.
type DeployResponse struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	CodeHash string    `json:"code_hash"`
	Receipts []Receipt `json:"receipts"`
}

// FunctionInfo is one deployed function.
type FunctionInfo struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	CodeHash       string `json:"code_hash"`
	MemoryPages    uint32 `json:"memory_pages"`
	TimeoutMillis  int64  `json:"timeout_ms"`
	MaxOutputBytes uint32 `json:"max_output_bytes"`
	// Unverified is the policy without a verifier: "accept" or "refuse".
	Unverified string `json:"unverified"`
	Height     uint64 `json:"height"`
}

// FunctionList answers GET /v1/functions.
type FunctionList struct {
	Functions []FunctionInfo `json:"functions"`
}

// InvokeRequest is the body of POST /v1/functions/{name}/invoke.
type InvokeRequest struct {
	// Input is the function's stdin (base64 in JSON).
	Input []byte `json:"input"`
	// Group, if set, runs it on that group; otherwise the gateway picks
	// the group with the fewest invocations in flight.
	Group *int `json:"group,omitempty"`
	// RequestID (64 hex digits), if set, names the request: a retry with
	// the same ID returns the recorded result and runs nothing again.
	// Empty: the gateway draws one.
	RequestID string `json:"request_id,omitempty"`
}

// InvokeResponse is the committed execution.
type InvokeResponse struct {
	RequestID string `json:"request_id"`
	Group     int    `json:"group"`
	// Output is the function's stdout (base64 in JSON).
	Output     []byte `json:"output"`
	Outcome    string `json:"outcome"`
	ExitCode   uint32 `json:"exit_code"`
	ResultHash string `json:"result_hash"`
	Executor   string `json:"executor"`
	Verifier   string `json:"verifier,omitempty"`
	TieBreaker string `json:"tie_breaker,omitempty"`
	// Verified: at least two nodes computed the same result.
	Verified bool `json:"verified"`
	// Unverified: the executor's result was accepted alone — no verifier
	// could run the request and the function's policy accepts that
	// (agreed, not verified).
	Unverified bool            `json:"unverified,omitempty"`
	Agreed     bool            `json:"agreed"`
	Conflict   string          `json:"conflict,omitempty"`
	Election   election.Record `json:"election"`
	// Receipt locates the execution record on the group's chain.
	Receipt Receipt `json:"receipt"`
	// Route is how the gateway chose the group ("requested",
	// "least-load"); Caller who invoked; Replayed is set when the answer
	// is an earlier run's record (same request ID).
	Route          string `json:"route,omitempty"`
	Caller         string `json:"caller,omitempty"`
	Replayed       bool   `json:"replayed,omitempty"`
	DurationMicros int64  `json:"duration_us,omitempty"`
}

// InvocationStatus answers GET /v1/invocations/{id} and an asynchronous
// POST /v1/functions/{name}/invoke?async=1 (202).
type InvocationStatus struct {
	ID     string `json:"id"`
	Group  int    `json:"group"`
	Status string `json:"status"` // "pending", "done" or "failed"
	// Result is set when done (also for a recorded conflict).
	Result *InvokeResponse `json:"result,omitempty"`
	// Error is set when failed: nothing was recorded.
	Error *ErrorBody `json:"error,omitempty"`
}

// Deploy deploys a function to every group.
func (c *Client) Deploy(ctx context.Context, req DeployRequest) (DeployResponse, error) {
	var out DeployResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/functions", nil, req, &out)
	return out, err
}

// Functions lists deployed functions.
func (c *Client) Functions(ctx context.Context) (FunctionList, error) {
	var out FunctionList
	_, err := c.do(ctx, http.MethodGet, "/v1/functions", nil, nil, &out)
	return out, err
}

// Function returns one deployed function.
func (c *Client) Function(ctx context.Context, name string) (FunctionInfo, error) {
	var out FunctionInfo
	_, err := c.do(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// InvokeWith runs a function with the full request (a chosen request ID
// makes retries safe) and returns the committed result; like Invoke, with
// the record of a disagreement.
func (c *Client) InvokeWith(ctx context.Context, name string, req InvokeRequest) (InvokeResponse, error) {
	var out InvokeResponse
	if req.Input == nil {
		req.Input = []byte{}
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke", nil, req, &out)
	return recordedOnError(out, err)
}

// InvokeAsync starts an invocation and returns at once with its ID;
// Invocation polls it.
func (c *Client) InvokeAsync(ctx context.Context, name string, req InvokeRequest) (InvocationStatus, error) {
	var out InvocationStatus
	if req.Input == nil {
		req.Input = []byte{}
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke?async=1", nil, req, &out)
	return out, err
}

// Invocation returns the state of the caller's invocation id.
func (c *Client) Invocation(ctx context.Context, id string) (InvocationStatus, error) {
	return c.InvocationOf(ctx, "", id)
}

// InvocationOf is Invocation of another caller's invocation ("role:name"
// as execution records write it; "" is the caller's own): for auditors,
// admins and nodes, since a submitter reads only its own.
func (c *Client) InvocationOf(ctx context.Context, caller, id string) (InvocationStatus, error) {
	var out InvocationStatus
	p := "/v1/invocations/" + url.PathEscape(id)
	if caller != "" {
		p += "?caller=" + url.QueryEscape(caller)
	}
	_, err := c.do(ctx, http.MethodGet, p, nil, nil, &out)
	return out, err
}

// Invoke runs a function and returns the committed, verified result. When
// the executions disagreed (errors.Is(err, ErrNoAgreement)) it returns the
// recorded outcome with the error.
func (c *Client) Invoke(ctx context.Context, name string, input []byte, group *int) (InvokeResponse, error) {
	var out InvokeResponse
	if input == nil {
		input = []byte{}
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke", nil, InvokeRequest{Input: input, Group: group}, &out)
	return recordedOnError(out, err)
}

// recordedOnError returns, with a recorded disagreement (ErrNoAgreement),
// the record the error body carries instead of out.
func recordedOnError(out InvokeResponse, err error) (InvokeResponse, error) {
	var e *APIError
	if errors.As(err, &e) && e.Body.Result != nil {
		return *e.Body.Result, err
	}
	return out, err
}
