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
	aadRequest        = "qledger/v1 session tx request"
	aadResponse       = "qledger/v1 session tx response"
	aadInvoke         = "qledger/v1 session invoke request"
	aadInvokeResponse = "qledger/v1 session invoke response"
)

// SealedInvoke is the plaintext of a sealed POST /v1/session/invoke.
type SealedInvoke struct {
	Function string `json:"function"`
	Input    []byte `json:"input"`
	Group    *int   `json:"group,omitempty"`
}

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
		return nil, fmt.Errorf("client: session: key manager: %w", err)
	}
	if len(ks) != 1 {
		return nil, fmt.Errorf("client: session: key manager returned %d keys", len(ks))
	}
	hs, hello, err := session.NewClientHandshake(ks[0].KeyID, ks[0].Key)
	if err != nil {
		return nil, fmt.Errorf("client: session: %w", err)
	}
	var opened SessionOpened
	if _, err := c.do(ctx, http.MethodPost, "/v1/session", nil, SessionOpen{MasterSAE: masterSAE, Hello: hello}, &opened); err != nil {
		return nil, err
	}
	s, fin, err := hs.Finish(opened.ServerHello, cfg)
	if err != nil {
		return nil, fmt.Errorf("client: session: %w", err)
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/session/finish", nil, fin, nil); err != nil {
		return nil, err
	}
	return &Session{c: c, s: s, KeyID: ks[0].KeyID}, nil
}

// SessionKey is the session key, so the client can check election records
// of its invocations (election.VerifyWithSessionKey).
func (s *Session) SessionKey() []byte { return s.s.Key() }

// ElectionKey derives the per-request election key from the session key.
func (s *Session) ElectionKey(requestID string) ([32]byte, error) { return s.s.ElectionKey(requestID) }

// Submit commits payload through the sealed channel.
func (s *Session) Submit(ctx context.Context, payload []byte, opt SubmitOptions) (Receipt, bool, error) {
	if payload == nil {
		payload = []byte{}
	}
	var rec SealedReceipt
	if err := s.call(ctx, "/v1/session/tx", aadRequest, aadResponse, SealedSubmit{Payload: payload, Group: opt.Group, IdempotencyKey: opt.IdempotencyKey}, &rec); err != nil {
		return Receipt{}, false, err
	}
	return rec.Receipt, rec.Replayed, nil
}

// Invoke runs a function through the sealed channel; its election key is
// derived from this session's key. Like Client.Invoke, a disagreement
// comes with its record.
func (s *Session) Invoke(ctx context.Context, function string, input []byte, group *int) (InvokeResponse, error) {
	if input == nil {
		input = []byte{}
	}
	var out InvokeResponse
	err := s.call(ctx, "/v1/session/invoke", aadInvoke, aadInvokeResponse, SealedInvoke{Function: function, Input: input, Group: group}, &out)
	return recordedOnError(out, err)
}

// call seals in, posts it to path, opens the sealed answer into out.
func (s *Session) call(ctx context.Context, path, aadIn, aadOut string, in, out any) error {
	plain, err := json.Marshal(in)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, err := s.s.Seal(plain, []byte(aadIn))
	if err != nil {
		return fmt.Errorf("client: session: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.base+path, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: session: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(body, &e.Body) != nil {
			e.Body = ErrorBody{Code: CodeInternal, Error: string(body)}
		}
		return e
	}
	inner, err := s.s.Open(body, []byte(aadOut))
	if err != nil {
		return fmt.Errorf("%w: sealed response: %v", ErrVerify, err)
	}
	var sr SealedResponse
	if err := json.Unmarshal(inner, &sr); err != nil {
		return fmt.Errorf("client: session: bad sealed response: %w", err)
	}
	if sr.Status != http.StatusOK {
		e := &APIError{Status: sr.Status}
		_ = json.Unmarshal(sr.Body, &e.Body)
		return e
	}
	if err := json.Unmarshal(sr.Body, out); err != nil {
		return fmt.Errorf("client: session: bad sealed answer: %w", err)
	}
	return nil
}
