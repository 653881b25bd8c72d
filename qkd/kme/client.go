package kme

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls any KME that implements ETSI GS QKD 014 (ours or a QKD
// vendor's). The http.Client must present the SAE's certificate (see
// ClientTLSConfig). Safe for concurrent use.
type Client struct {
	base string // ends with /api/v1/keys
	hc   *http.Client
	max  int64
}

// NewClient returns a client for the KME at baseURL, either
// "https://host:port" or the full ".../api/v1/keys".
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q", ErrInvalidConfig, baseURL)
	}
	base := strings.TrimRight(u.String(), "/")
	if !strings.HasSuffix(base, "/api/v1/keys") {
		base += "/api/v1/keys"
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: base, hc: hc, max: 16 << 20}, nil
}

// Status asks for the status of the link to slave.
func (c *Client) Status(ctx context.Context, slave string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, slave, "status", nil, nil, &st)
	return st, err
}

// EncKeys is "Get key": the master SAE takes keys shared with slave.
func (c *Client) EncKeys(ctx context.Context, slave string, req KeyRequest) ([]Key, error) {
	var kc KeyContainer
	if err := c.do(ctx, http.MethodPost, slave, "enc_keys", nil, req, &kc); err != nil {
		return nil, err
	}
	return kc.Keys, nil
}

// EncKeysGet is EncKeys with the GET form (?number=&size=); zero leaves a
// parameter out.
func (c *Client) EncKeysGet(ctx context.Context, slave string, number, size int) ([]Key, error) {
	q := url.Values{}
	if number != 0 {
		q.Set("number", strconv.Itoa(number))
	}
	if size != 0 {
		q.Set("size", strconv.Itoa(size))
	}
	var kc KeyContainer
	if err := c.do(ctx, http.MethodGet, slave, "enc_keys", q, nil, &kc); err != nil {
		return nil, err
	}
	return kc.Keys, nil
}

// DecKeys is "Get key with key IDs": the slave SAE fetches the keys master
// took.
func (c *Client) DecKeys(ctx context.Context, master string, ids []string) ([]Key, error) {
	body := KeyIDs{KeyIDs: make([]KeyID, len(ids))}
	for i, id := range ids {
		body.KeyIDs[i].KeyID = id
	}
	var kc KeyContainer
	if err := c.do(ctx, http.MethodPost, master, "dec_keys", nil, body, &kc); err != nil {
		return nil, err
	}
	return kc.Keys, nil
}

// DecKeysGet is DecKeys with the GET form (?key_ID=...).
func (c *Client) DecKeysGet(ctx context.Context, master string, ids []string) ([]Key, error) {
	q := url.Values{"key_ID": ids}
	var kc KeyContainer
	if err := c.do(ctx, http.MethodGet, master, "dec_keys", q, nil, &kc); err != nil {
		return nil, err
	}
	return kc.Keys, nil
}

func (c *Client) do(ctx context.Context, method, sae, op string, q url.Values, in, out any) error {
	if err := ValidateSAEID(sae); err != nil {
		return err
	}
	u := c.base + "/" + sae + "/" + op
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("qkd/kme: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("qkd/kme: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("qkd/kme: %s %s: %w", method, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.max))
	if err != nil {
		return fmt.Errorf("qkd/kme: read %s response: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProtocol, op, err)
	}
	return nil
}
