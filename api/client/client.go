// Package client is the Go client of the qledger HTTP API, with
// client-side verification of what the server returns: inclusion proofs,
// consistency proofs and whole chains are checked here, not trusted.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one node's API; the node routes to the right group.
// It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client for base ("http://127.0.0.1:8080"). A nil
// http.Client gets one with a 30 s timeout.
func New(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: bad API address %q (want http://host:port)", base)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}, nil
}

// NewTLS returns a client for an https:// base that authenticates with
// the given TLS configuration (pki.Credentials.ClientConfig makes one that
// presents the caller's certificate and checks the node's).
func NewTLS(base string, cfg *tls.Config) (*Client, error) {
	if !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("client: a TLS client needs an https:// address, not %q", base)
	}
	return New(base, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 128, ForceAttemptHTTP2: true}})
}

// Base is the API address.
func (c *Client) Base() string { return c.base }

// Level is a read consistency level: "stale", "default" or
// "linearizable" ("" = server default).
type Level string

func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, in, out any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) != nil || e.Body.Code == "" {
			e.Body = ErrorBody{Code: CodeInternal, Error: strings.TrimSpace(string(data))}
		}
		return resp, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("client: %s %s: bad response: %w", method, path, err)
		}
	}
	return resp, nil
}

// SubmitOptions are optional parts of a submission.
type SubmitOptions struct {
	// Group to write to; nil lets the server choose.
	Group *int
	// IdempotencyKey makes retries safe: the same key with the same
	// payload returns the original receipt; with another payload, an
	// error matching ErrConflict.
	IdempotencyKey string
}

// Submit commits payload and returns its receipt. Replayed reports whether
// the server answered from its de-duplication table.
func (c *Client) Submit(ctx context.Context, payload []byte, opt SubmitOptions) (r Receipt, replayed bool, err error) {
	hdr := http.Header{}
	if opt.IdempotencyKey != "" {
		hdr.Set("Idempotency-Key", opt.IdempotencyKey)
	}
	if payload == nil {
		payload = []byte{}
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/tx", hdr, SubmitRequest{Payload: payload, Group: opt.Group}, &r)
	if err != nil {
		return r, false, err
	}
	return r, resp.Header.Get("Idempotent-Replayed") == "true", nil
}

func levelQuery(l Level) string {
	if l == "" {
		return ""
	}
	return "level=" + url.QueryEscape(string(l))
}

func withQuery(path string, parts ...string) string {
	var q []string
	for _, p := range parts {
		if p != "" {
			q = append(q, p)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + strings.Join(q, "&")
}

// Tx fetches a transaction with its inclusion proof. It does not verify
// the proof; VerifyTx does.
func (c *Client) Tx(ctx context.Context, id string, level Level) (TxResponse, error) {
	var out TxResponse
	_, err := c.do(ctx, http.MethodGet, withQuery("/v1/tx/"+url.PathEscape(id), levelQuery(level)), nil, nil, &out)
	return out, err
}

// Head fetches group g's newest header (height 0 if it has no blocks).
func (c *Client) Head(ctx context.Context, g int, level Level) (Head, error) {
	var out Head
	_, err := c.do(ctx, http.MethodGet, withQuery(fmt.Sprintf("/v1/groups/%d/head", g), levelQuery(level)), nil, nil, &out)
	return out, err
}

// Block fetches group g's block at height.
func (c *Client) Block(ctx context.Context, g int, height uint64, level Level) (Block, error) {
	var out Block
	_, err := c.do(ctx, http.MethodGet, withQuery(fmt.Sprintf("/v1/groups/%d/blocks/%d", g, height), levelQuery(level)), nil, nil, &out)
	return out, err
}

// Blocks fetches up to limit blocks of group g from height from.
func (c *Client) Blocks(ctx context.Context, g int, from uint64, limit int, level Level) ([]Block, error) {
	var out BlockList
	p := withQuery(fmt.Sprintf("/v1/groups/%d/blocks", g), "from="+strconv.FormatUint(from, 10), "limit="+strconv.Itoa(limit), levelQuery(level))
	_, err := c.do(ctx, http.MethodGet, p, nil, nil, &out)
	return out.Blocks, err
}

// Consistency fetches a consistency proof between two sizes of group g's
// log. It does not verify it; VerifyConsistency does.
func (c *Client) Consistency(ctx context.Context, g int, from, to uint64, level Level) (ConsistencyResponse, error) {
	var out ConsistencyResponse
	p := withQuery(fmt.Sprintf("/v1/groups/%d/proof/consistency", g), "from="+strconv.FormatUint(from, 10), "to="+strconv.FormatUint(to, 10), levelQuery(level))
	_, err := c.do(ctx, http.MethodGet, p, nil, nil, &out)
	return out, err
}

// Cluster fetches the cluster status.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var out ClusterStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, &out)
	return out, err
}

// KeyManager fetches the status of the node's key manager: its pools and
// their recent QKD blocks (GET /v1/keymanager).
func (c *Client) KeyManager(ctx context.Context) (KeyManagerStatus, error) {
	var out KeyManagerStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/keymanager", nil, nil, &out)
	return out, err
}

// Ready reports whether every group has a leader (GET /readyz).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// Join asks the cluster to admit a node.
func (c *Client) Join(ctx context.Context, req JoinRequest) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/join", nil, req, nil)
	return err
}

// Scale asks a dev cluster to run k executor nodes.
func (c *Client) Scale(ctx context.Context, k int) (int, error) {
	var out ScaleRequest
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/scale", nil, ScaleRequest{Executors: k}, &out)
	return out.Executors, err
}

// Scrub verifies the chain store of group g's replica node (empty: every
// replica) in full and reports what each found (admin role).
func (c *Client) Scrub(ctx context.Context, g int, node string) ([]ScrubReport, error) {
	var out ScrubResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/scrub", nil, ScrubRequest{Group: g, Node: node}, &out)
	return out.Reports, err
}

// Repair rebuilds the chain store of group g's replica node (empty: every
// replica) from its raft snapshot and log, verifies it and clears its
// alarm (admin role).
func (c *Client) Repair(ctx context.Context, g int, node string) ([]ScrubReport, error) {
	var out ScrubResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/repair", nil, ScrubRequest{Group: g, Node: node}, &out)
	return out.Reports, err
}

// TransferLeader hands group g's leadership to the voter to (empty: any
// voter) and returns the new leader's ID. c must talk to g's leader.
func (c *Client) TransferLeader(ctx context.Context, g int, to string) (string, error) {
	var out TransferLeaderResult
	_, err := c.do(ctx, http.MethodPost, "/v1/groups/"+strconv.Itoa(g)+"/leader/transfer", nil, TransferLeaderRequest{To: to}, &out)
	return out.Leader, err
}

// Leave makes the node c talks to leave the cluster gracefully; its
// process stops afterwards.
func (c *Client) Leave(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/node/leave", nil, struct{}{}, nil)
	return err
}

// ServerNotAfter connects to the node and returns when the certificate
// chain it serves stops being valid: the earliest end of validity of its
// certificate and the chain up to the CA. Zero without TLS.
func (c *Client) ServerNotAfter(ctx context.Context) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("client: GET /healthz: %w", err)
	}
	resp.Body.Close()
	var end time.Time
	if resp.TLS == nil {
		return end, nil
	}
	certs := resp.TLS.PeerCertificates
	if len(resp.TLS.VerifiedChains) > 0 {
		certs = resp.TLS.VerifiedChains[0]
	}
	for _, cert := range certs {
		if end.IsZero() || cert.NotAfter.Before(end) {
			end = cert.NotAfter
		}
	}
	return end, nil
}

// Snapshot streams a consistent copy of group g's chain store from the
// node (a member of g; its group's leader holds every committed write) to
// w and returns how many bytes it wrote; ctx bounds the transfer (the
// client's per-request timeout does not). The copy is not verified here:
// see fsm.VerifyFile.
func (c *Client) Snapshot(ctx context.Context, g int, w io.Writer) (int64, error) {
	path := "/v1/groups/" + strconv.Itoa(g) + "/snapshot"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	// A large store takes longer than the client's per-request timeout:
	// ctx alone bounds the transfer.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) != nil || e.Body.Code == "" {
			e.Body = ErrorBody{Code: CodeInternal, Error: strings.TrimSpace(string(data))}
		}
		return 0, e
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: GET %s: %w", path, err)
	}
	return n, nil
}

// Remove takes a node out of its group.
func (c *Client) Remove(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Post sends a JSON body to path and decodes the JSON answer into out; it
// is the escape hatch for endpoints without a typed method.
func (c *Client) Post(ctx context.Context, path string, in, out any) (*http.Response, error) {
	return c.do(ctx, http.MethodPost, path, nil, in, out)
}
