package client

import (
	"context"
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
	Height         uint64 `json:"height"`
}

// FunctionList answers GET /v1/functions.
type FunctionList struct {
	Functions []FunctionInfo `json:"functions"`
}

// InvokeRequest is the body of POST /v1/functions/{name}/invoke.
type InvokeRequest struct {
	// Input is the function's stdin (base64 in JSON).
	Input []byte `json:"input"`
	// Group, if set, runs it on that group; otherwise the request ID picks.
	Group *int `json:"group,omitempty"`
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
	Verified bool            `json:"verified"`
	Agreed   bool            `json:"agreed"`
	Conflict string          `json:"conflict,omitempty"`
	Election election.Record `json:"election"`
	// Receipt locates the execution record on the group's chain.
	Receipt Receipt `json:"receipt"`
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

// Invoke runs a function and returns the committed, verified result.
func (c *Client) Invoke(ctx context.Context, name string, input []byte, group *int) (InvokeResponse, error) {
	var out InvokeResponse
	if input == nil {
		input = []byte{}
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke", nil, InvokeRequest{Input: input, Group: group}, &out)
	return out, err
}
