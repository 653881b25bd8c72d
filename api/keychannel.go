package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

// KeyChannel is the gateway's side of the quantum-keyed channel: a client
// takes a QKD key from the key manager (ETSI GS QKD 014 enc_keys), names it
// in a handshake that adds an ML-KEM-768 exchange, and then sends requests
// sealed under the resulting session key (AES-256-GCM with a per-message
// counter). The gateway fetches the same QKD key by its ID (dec_keys) from
// its KeySource: the key manager in process, or any ETSI GS QKD 014 KME,
// such as a QKD vendor's, over HTTPS.
//
// What it protects: the request and response bodies between the client and
// this gateway node, against anyone who does not hold the QKD key *and*
// break ML-KEM-768; replays and reordering are refused. What it does not:
// the gateway sees plaintext, and so does the ledger it writes to; the
// session lives in this node's memory only (a client must keep using the
// node that accepted it, and a lost response ends the session).
type KeyChannel struct {
	// KME hands the gateway the QKD keys named in handshakes:
	// (*kme.Server).Local(GatewaySAE) in process, or a *kme.Client whose
	// certificate names GatewaySAE.
	KME KeySource
	// GatewaySAE is this gateway's SAE ID, the slave of every pair it
	// accepts sessions from: the identity KME authenticates it as. It
	// names the gateway in errors.
	GatewaySAE string
	// Session is the envelope's rotation policy.
	Session session.Config
	// MaxSessions and TTL bound the session table.
	MaxSessions int
	TTL         time.Duration

	mu       sync.Mutex
	sessions map[[session.SessionIDSize]byte]*liveSession
}

type liveSession struct {
	mu          sync.Mutex // one ordered stream: one request at a time
	s           *session.Session
	keyID       string // the QKD key's ID, named in election records
	established bool
	last        time.Time
}

// KeySource is the key manager as the gateway sees it: DecKeys hands the
// gateway, as the slave SAE, the keys that master took (ETSI GS QKD 014
// "Get key with key IDs"), each at most once, and erases them. The
// gateway's own SAE ID is the implementation's: the SAE of a kme.Local, the
// client certificate of a kme.Client. It must be safe for concurrent use.
//
// A key that is unknown, not shared by master with this gateway or already
// fetched is an error wrapping kme.ErrKeyNotFound, kme.ErrUnknownPair or
// kme.ErrBadRequest (over HTTPS the KME answers all three with 400); any
// other error means the key manager could not be asked.
type KeySource interface {
	DecKeys(ctx context.Context, master string, keyIDs []string) ([]kme.Key, error)
}

var (
	_ KeySource = (*kme.Local)(nil)
	_ KeySource = (*kme.Client)(nil)
)

// errSession marks a session that does not exist or can no longer be used.
var errSession = errors.New("api: no such session")

func (k *KeyChannel) init() {
	if k.sessions == nil {
		k.sessions = map[[session.SessionIDSize]byte]*liveSession{}
	}
	if k.MaxSessions <= 0 {
		k.MaxSessions = 10000
	}
	if k.TTL <= 0 {
		k.TTL = 30 * time.Minute
	}
	if k.Session == (session.Config{}) {
		k.Session = session.DefaultConfig()
	}
}

func (k *KeyChannel) put(s *session.Session, keyID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	for id, ls := range k.sessions {
		if now.Sub(ls.last) > k.TTL {
			delete(k.sessions, id)
		}
	}
	if len(k.sessions) >= k.MaxSessions {
		return fmt.Errorf("%w: session table full (%d)", cluster.ErrShutdown, k.MaxSessions)
	}
	k.sessions[s.ID()] = &liveSession{s: s, keyID: keyID, last: now}
	return nil
}

func (k *KeyChannel) get(id []byte) (*liveSession, error) {
	var key [session.SessionIDSize]byte
	if len(id) != len(key) {
		return nil, fmt.Errorf("%w: session ID must be %d bytes", errSession, len(key))
	}
	copy(key[:], id)
	k.mu.Lock()
	defer k.mu.Unlock()
	ls, ok := k.sessions[key]
	if !ok || time.Since(ls.last) > k.TTL {
		delete(k.sessions, key)
		return nil, fmt.Errorf("%w: %x", errSession, id)
	}
	return ls, nil
}

func (k *KeyChannel) drop(id [session.SessionIDSize]byte) {
	k.mu.Lock()
	delete(k.sessions, id)
	k.mu.Unlock()
}

// AAD strings bind envelopes to their use.
const (
	aadRequest        = "qledger/v1 session tx request"
	aadResponse       = "qledger/v1 session tx response"
	aadInvoke         = "qledger/v1 session invoke request"
	aadInvokeResponse = "qledger/v1 session invoke response"
)

func (s *Server) sessionRoutes() {
	s.route("POST", "/v1/session", writers, s.sessionOpen)
	s.route("POST", "/v1/session/finish", writers, s.sessionFinish)
	s.route("POST", "/v1/session/tx", writers, s.sessionTx)
	s.route("POST", "/v1/session/invoke", writers, s.sessionInvoke)
	s.route("GET", "/v1/keymanager", readers, s.keyManager)
}

// PoolReporter is a KeySource that can show its pools: the key manager in
// the node's process (kme.Local). A KME elsewhere is not one.
type PoolReporter interface {
	Pools() []kme.PoolStatus
}

var _ PoolReporter = (*kme.Local)(nil)

// keyManager answers the status of the key channel's key manager: none,
// external (its pools are not visible from here), or in process with the
// gateway's pools and their recent QKD blocks.
func (s *Server) keyManager(w http.ResponseWriter, r *http.Request) {
	out := client.KeyManagerStatus{KeyManager: client.KeyManagerNone, Pools: []kme.PoolStatus{}}
	if k := s.cfg.Keys; k != nil {
		out.GatewaySAE, out.KeyManager = k.GatewaySAE, client.KeyManagerExternal
		if pr, ok := k.KME.(PoolReporter); ok {
			out.KeyManager, out.Pools = client.KeyManagerInProcess, pr.Pools()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) keyChannel(w http.ResponseWriter) (*KeyChannel, bool) {
	if s.cfg.Keys == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "this node runs no key channel (start it with a key manager)")
		return nil, false
	}
	return s.cfg.Keys, true
}

func (s *Server) sessionOpen(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keyChannel(w)
	if !ok {
		return
	}
	var req client.SessionOpen
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.Hello.Validate(); err != nil {
		s.fail(w, r, badRequest("client hello: %v", err))
		return
	}
	if err := kme.ValidateSAEID(req.MasterSAE); err != nil {
		s.fail(w, r, badRequest("master_sae: %v", err))
		return
	}
	if _, err := kme.ParseKeyID(req.Hello.KeyID); err != nil {
		s.fail(w, r, badRequest("key_id: %v", err))
		return
	}
	key, err := k.fetch(r.Context(), req.MasterSAE, req.Hello.KeyID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sess, sh, err := session.Accept(req.Hello, key, k.Session)
	clear(key)
	if err != nil {
		s.fail(w, r, badRequest("handshake: %v", err))
		return
	}
	if err := k.put(sess, req.Hello.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.SessionOpened{ServerHello: sh})
}

// fetch gets the QKD key keyID (already checked to be a canonical UUID)
// that master took for this gateway. An unknown key is cluster.ErrNotFound;
// a key manager that cannot be asked, or answers with something else than
// the one key asked for, is cluster.ErrShutdown (503).
func (k *KeyChannel) fetch(ctx context.Context, master, keyID string) ([]byte, error) {
	keys, err := k.KME.DecKeys(ctx, master, []string{keyID})
	switch {
	case errors.Is(err, kme.ErrKeyNotFound), errors.Is(err, kme.ErrUnknownPair), errors.Is(err, kme.ErrBadRequest):
		return nil, fmt.Errorf("%w: key %s for (%s, %s): %v", cluster.ErrNotFound, keyID, master, k.GatewaySAE, err)
	case err != nil:
		return nil, fmt.Errorf("%w: key manager: %v", cluster.ErrShutdown, err)
	case len(keys) != 1 || !strings.EqualFold(keys[0].KeyID, keyID) || len(keys[0].Key) == 0:
		for _, x := range keys {
			clear(x.Key)
		}
		return nil, fmt.Errorf("%w: key manager did not answer with key %s alone (%d keys)", cluster.ErrShutdown, keyID, len(keys))
	}
	return keys[0].Key, nil
}

func (s *Server) sessionFinish(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keyChannel(w)
	if !ok {
		return
	}
	var fin session.ClientFinish
	if err := decodeStrict(r.Body, &fin); err != nil {
		s.fail(w, r, err)
		return
	}
	ls, err := k.get(fin.SessionID)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", cluster.ErrNotFound, err))
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.s.VerifyFinish(fin); err != nil {
		k.drop(ls.s.ID())
		s.fail(w, r, badRequest("finish: %v", err))
		return
	}
	ls.established = true
	ls.last = time.Now()
	writeJSON(w, http.StatusOK, map[string]string{"status": "established"})
}

// sealedCall opens a sealed request on its session, runs handle on the
// plaintext and seals handle's status and body as the answer. Failures to
// open the envelope are answered in the clear.
func (s *Server) sealedCall(w http.ResponseWriter, r *http.Request, aadIn, aadOut string, handle func(ls *liveSession, plain []byte) (int, any)) {
	k, ok := s.keyChannel(w)
	if !ok {
		return
	}
	msg, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hdr, err := session.ParseHeader(msg)
	if err != nil {
		s.fail(w, r, badRequest("envelope: %v", err))
		return
	}
	ls, err := k.get(hdr.SessionID[:])
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", cluster.ErrNotFound, err))
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.established {
		s.fail(w, r, badRequest("session %x is not finished", hdr.SessionID))
		return
	}
	plain, err := ls.s.Open(msg, []byte(aadIn))
	if err != nil {
		s.fail(w, r, badRequest("envelope refused: %v", err))
		return
	}
	ls.last = time.Now()
	status, body := handle(ls, plain)
	inner, _ := json.Marshal(client.SealedResponse{Status: status, Body: mustJSON(body)})
	sealed, err := ls.s.Seal(inner, []byte(aadOut))
	if err != nil {
		k.drop(ls.s.ID())
		s.fail(w, r, fmt.Errorf("%w: seal: %v", cluster.ErrShutdown, err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(sealed)
}

// sessionInvoke runs a sealed invocation whose election key comes from the
// session key: HKDF(session key, request ID), the QKD key's ID recorded.
func (s *Server) sessionInvoke(w http.ResponseWriter, r *http.Request) {
	s.sealedCall(w, r, aadInvoke, aadInvokeResponse, func(ls *liveSession, plain []byte) (int, any) {
		var req client.SealedInvoke
		if err := decodeStrict(bytes.NewReader(plain), &req); err != nil || req.Function == "" {
			return http.StatusBadRequest, client.ErrorBody{Code: codeBadRequest, Error: "sealed invocation must be {\"function\", \"input\", \"group\"}"}
		}
		inv, err := s.prepareInvoke(req.Function, client.InvokeRequest{Input: req.Input, Group: req.Group})
		if err != nil {
			st, code := classify(err)
			return st, client.ErrorBody{Code: code, Error: err.Error()}
		}
		inv.origin = s.origin(r)
		res, err := s.runInvoke(r.Context(), submitter(r), inv, ls.s.Key(), ls.keyID)
		if err != nil {
			return invokeFailure(res, err)
		}
		return http.StatusOK, res
	})
}

// sessionTx opens a sealed write, commits it and seals the answer.
func (s *Server) sessionTx(w http.ResponseWriter, r *http.Request) {
	s.sealedCall(w, r, aadRequest, aadResponse, func(ls *liveSession, plain []byte) (int, any) {
		var req client.SealedSubmit
		if err := decodeStrict(bytes.NewReader(plain), &req); err != nil || req.Payload == nil {
			return http.StatusBadRequest, client.ErrorBody{Code: codeBadRequest, Error: "sealed request must be {\"payload\", \"group\", \"idempotency_key\"}"}
		}
		rec, replayed, err := s.submitTx(r, req.Payload, req.Group, req.IdempotencyKey)
		if err != nil {
			st, code := classify(err)
			return st, client.ErrorBody{Code: code, Error: err.Error()}
		}
		return http.StatusOK, client.SealedReceipt{Receipt: rec, Replayed: replayed}
	})
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
