package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"qledger/qkd/kme"
	"qledger/qkd/session"
)

// Wire types of the quantum-keyed channel.

// SessionOpen is the body of POST /v1/session.
type SessionOpen struct {
	// MasterSAE is the client's SAE ID at the key manager.
	MasterSAE string              `json:"master_sae"`
	Hello     session.ClientHello `json:"hello"`
}

// SessionOpened answers POST /v1/session.
type SessionOpened struct {
	ServerHello session.ServerHello `json:"server_hello"`
}

// SealedSubmit is the plaintext of a sealed POST /v1/session/tx.
type SealedSubmit struct {
	Payload        []byte `json:"payload"`
	Group          *int   `json:"group,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// SealedResponse is the plaintext of the sealed answer: the status the
// clear endpoint would have used and its body.
type SealedResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// SealedReceipt is the body of a successful sealed write.
type SealedReceipt struct {
	Receipt
	Replayed bool `json:"replayed"`
}

const (
	aadRequest  = "qledger/v1 session tx request"
	aadResponse = "qledger/v1 session tx response"
)

// Session is an established quantum-keyed channel to one gateway node.
// Requests on it are serialized: the envelope is one ordered stream.
type Session struct {
	c     *Client
	mu    sync.Mutex
	s     *session.Session
	KeyID string
}

// OpenSession takes one QKD key for gatewaySAE from the key manager (as
// masterSAE, the identity in keys' client certificate), runs the hybrid
// handshake with the gateway at c, and returns the session.
func (c *Client) OpenSession(ctx context.Context, keys *kme.Client, masterSAE, gatewaySAE string, cfg session.Config) (*Session, error) {
	one, size := 1, 256
	ks, err := keys.EncKeys(ctx, gatewaySAE, kme.KeyRequest{Number: &one, Size: &size})
	if err != nil {
		return nil, fmt.Errorf("qledger: session: key manager: %w", err)
	}
	if len(ks) != 1 {
		return nil, fmt.Errorf("qledger: session: key manager returned %d keys", len(ks))
	}
	hs, hello, err := session.NewClientHandshake(ks[0].KeyID, ks[0].Key)
	if err != nil {
		return nil, fmt.Errorf("qledger: session: %w", err)
	}
	var opened SessionOpened
	if _, err := c.do(ctx, http.MethodPost, "/v1/session", nil, SessionOpen{MasterSAE: masterSAE, Hello: hello}, &opened); err != nil {
		return nil, err
	}
	s, fin, err := hs.Finish(opened.ServerHello, cfg)
	if err != nil {
		return nil, fmt.Errorf("qledger: session: %w", err)
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/session/finish", nil, fin, nil); err != nil {
		return nil, err
	}
	return &Session{c: c, s: s, KeyID: ks[0].KeyID}, nil
}

// ElectionKey derives the per-request election key from the session key.
func (s *Session) ElectionKey(requestID string) ([32]byte, error) { return s.s.ElectionKey(requestID) }

// Submit commits payload through the sealed channel.
func (s *Session) Submit(ctx context.Context, payload []byte, opt SubmitOptions) (Receipt, bool, error) {
	if payload == nil {
		payload = []byte{}
	}
	plain, err := json.Marshal(SealedSubmit{Payload: payload, Group: opt.Group, IdempotencyKey: opt.IdempotencyKey})
	if err != nil {
		return Receipt{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, err := s.s.Seal(plain, []byte(aadRequest))
	if err != nil {
		return Receipt{}, false, fmt.Errorf("qledger: session: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.base+"/v1/session/tx", bytes.NewReader(msg))
	if err != nil {
		return Receipt{}, false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return Receipt{}, false, fmt.Errorf("qledger: session: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Receipt{}, false, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(body, &e.Body) != nil {
			e.Body = ErrorBody{Code: CodeInternal, Error: string(body)}
		}
		return Receipt{}, false, e
	}
	inner, err := s.s.Open(body, []byte(aadResponse))
	if err != nil {
		return Receipt{}, false, fmt.Errorf("%w: sealed response: %v", ErrVerify, err)
	}
	var sr SealedResponse
	if err := json.Unmarshal(inner, &sr); err != nil {
		return Receipt{}, false, fmt.Errorf("qledger: session: bad sealed response: %w", err)
	}
	if sr.Status != http.StatusOK {
		e := &APIError{Status: sr.Status}
		_ = json.Unmarshal(sr.Body, &e.Body)
		return Receipt{}, false, e
	}
	var rec SealedReceipt
	if err := json.Unmarshal(sr.Body, &rec); err != nil {
		return Receipt{}, false, fmt.Errorf("qledger: session: bad receipt: %w", err)
	}
	return rec.Receipt, rec.Replayed, nil
}
