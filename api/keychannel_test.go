package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/election"
	"qledger/examples/functions/tiny"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

// keyRig is a one-node cluster whose API runs a key channel, and a key
// manager served over mutual TLS, its pool filled by the BB84 engine.
type keyRig struct {
	api  *client.Client
	url  string
	kmeC *kme.Client // as SAE "client"
	keys *KeyChannel
	km   *kme.Server
	kts  *httptest.Server // the key manager's HTTPS server
}

// keySourceKind says how the gateway reaches the key manager.
type keySourceKind int

const (
	inProcess keySourceKind = iota // kme.Server.Local
	overHTTPS                      // kme.Client with the gateway's certificate
)

func newKeyRig(t *testing.T) keyRig { return newKeyRigWith(t, inProcess, nil) }

// newKeyRigWith builds the rig with the gateway reaching the key manager
// as kind says, or through wrap(source) if wrap is not nil.
func newKeyRigWith(t *testing.T, kind keySourceKind, wrap func(KeySource) KeySource) keyRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cluster.StartLocal(ctx, cluster.LocalConfig{Groups: 1, Replicas: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	km, err := kme.NewServer(kme.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := km.AddPair("client", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Channel.Noise = 0.02
	link, err := qkd.NewLink(qc)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Fill(ctx, link, 8, 3); err != nil {
		t.Fatal(err)
	}
	ca, _ := pki.NewCA("test", time.Hour)
	srvCert, _ := ca.Issue(pki.Leaf{CommonName: "kme", Server: true, Hosts: []string{"127.0.0.1"}})
	kts := httptest.NewUnstartedServer(km)
	kts.TLS = kme.ServerTLSConfig(srvCert.TLS, ca.Pool())
	kts.StartTLS()
	t.Cleanup(kts.Close)
	saeClient := func(sae string) *kme.Client {
		cert, err := ca.Issue(pki.Leaf{CommonName: sae, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		kc, err := kme.NewClient(kts.URL, &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: kme.ClientTLSConfig(cert.TLS, ca.Pool())}})
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}

	var src KeySource = km.Local("gateway")
	if kind == overHTTPS {
		src = saeClient("gateway")
	}
	if wrap != nil {
		src = wrap(src)
	}
	keys := &KeyChannel{KME: src, GatewaySAE: "gateway"}
	cfg := DefaultConfig()
	cfg.Keys = keys
	srv, err := New(cfg, l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c, _ := client.New(ts.URL, nil)
	return keyRig{api: c, url: ts.URL, kmeC: saeClient("client"), keys: keys, km: km, kts: kts}
}

// keySourceFunc is a KeySource made of a function, for faults.
type keySourceFunc func(ctx context.Context, master string, ids []string) ([]kme.Key, error)

func (f keySourceFunc) DecKeys(ctx context.Context, master string, ids []string) ([]kme.Key, error) {
	return f(ctx, master, ids)
}

// hello posts a handshake naming keyID to the gateway.
func (rig keyRig) hello(t *testing.T, master, keyID string, key []byte) error {
	t.Helper()
	_, hello, err := session.NewClientHandshake(keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	var out client.SessionOpened
	_, err = rig.api.Post(context.Background(), "/v1/session", client.SessionOpen{MasterSAE: master, Hello: hello}, &out)
	return err
}

func TestKeyChannelSubmit(t *testing.T) {
	rig := newKeyRig(t)
	ctx := context.Background()
	s, err := rig.api.OpenSession(ctx, rig.kmeC, "client", "gateway", session.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	r, replayed, err := s.Submit(ctx, []byte("sealed hello"), client.SubmitOptions{IdempotencyKey: "s1"})
	if err != nil || replayed {
		t.Fatalf("sealed submit: %v", err)
	}
	tx, err := rig.api.Tx(ctx, r.ID, "")
	if err != nil || string(tx.Tx.Payload) != "sealed hello" {
		t.Fatalf("committed tx: %+v %v", tx, err)
	}
	// Idempotency holds inside the channel too.
	r2, replayed, err := s.Submit(ctx, []byte("sealed hello"), client.SubmitOptions{IdempotencyKey: "s1"})
	if err != nil || !replayed || r2 != r {
		t.Fatalf("sealed replay: %+v %v %v", r2, replayed, err)
	}
	// Errors travel sealed with their status.
	g := 9
	_, _, err = s.Submit(ctx, []byte("x"), client.SubmitOptions{Group: &g})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("sealed bad request: %v", err)
	}
	// The QKD key was used once: the gateway cannot fetch it again.
	if _, err := rig.keys.KME.DecKeys(ctx, "client", []string{s.KeyID}); err == nil {
		t.Fatal("a QKD key was delivered twice")
	}
	// The election key is derived from the session key.
	k1, _ := s.ElectionKey("req-1")
	k2, _ := s.ElectionKey("req-2")
	if k1 == k2 {
		t.Fatal("election keys do not depend on the request")
	}
}

func TestKeyChannelRefusesReplayAndForgery(t *testing.T) {
	rig := newKeyRig(t)
	ctx := context.Background()
	var s *client.Session
	var err error
	// Capture one sealed request as an attacker on the wire would.
	rec := &recorder{}
	tapped, _ := client.New(rig.url, &http.Client{Transport: rec})
	s, err = tapped.OpenSession(ctx, rig.kmeC, "client", "gateway", session.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Submit(ctx, []byte("a"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	msg := rec.last
	post := func(b []byte) int {
		resp, err := http.Post(rig.url+"/v1/session/tx", "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(msg); st != 400 {
		t.Fatalf("replayed message: %d", st)
	}
	forged := append([]byte(nil), msg...)
	forged[len(forged)-1] ^= 1
	if st := post(forged); st != 400 {
		t.Fatalf("forged message: %d", st)
	}
	if st := post([]byte("garbage")); st != 400 {
		t.Fatalf("garbage: %d", st)
	}
	// The session survives the attempts.
	if _, _, err := s.Submit(ctx, []byte("b"), client.SubmitOptions{}); err != nil {
		t.Fatalf("session after refused messages: %v", err)
	}
}

// recorder keeps the last body sent to /v1/session/tx.
type recorder struct{ last []byte }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/session/tx" && req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		r.last = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestKeyChannelBadHandshakes(t *testing.T) {
	rig := newKeyRig(t)
	ctx := context.Background()
	hs := func(master, keyID string, key []byte) error {
		_, hello, err := session.NewClientHandshake(keyID, key)
		if err != nil {
			return err
		}
		var out client.SessionOpened
		_, err = rig.api.Post(ctx, "/v1/session", client.SessionOpen{MasterSAE: master, Hello: hello}, &out)
		return err
	}
	one := 1
	ks, err := rig.kmeC.EncKeys(ctx, "gateway", kme.KeyRequest{Number: &one})
	if err != nil {
		t.Fatal(err)
	}
	if err := hs("client", "9b2f3c1e-0000-4000-8000-000000000000", make([]byte, 32)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown key ID: %v", err)
	}
	if err := hs("mallory", ks[0].KeyID, ks[0].Key); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("wrong master SAE: %v", err)
	}
	// Knowing a key ID without the key gets nothing: the gateway answers
	// the hello, but its confirmation does not verify for the impostor.
	ks, err = rig.kmeC.EncKeys(ctx, "gateway", kme.KeyRequest{Number: &one})
	if err != nil {
		t.Fatal(err)
	}
	impostor, hello, _ := session.NewClientHandshake(ks[0].KeyID, make([]byte, len(ks[0].Key)))
	var opened client.SessionOpened
	if _, err := rig.api.Post(ctx, "/v1/session", client.SessionOpen{MasterSAE: "client", Hello: hello}, &opened); err != nil {
		t.Fatal(err)
	}
	if _, _, err := impostor.Finish(opened.ServerHello, session.DefaultConfig()); err == nil {
		t.Fatal("a client without the QKD key finished the handshake")
	}
	// No key channel on a node: 404.
	_, c, _ := startAPI(t, 1, 1)
	_, err = c.OpenSession(ctx, rig.kmeC, "client", "gateway", session.DefaultConfig())
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("node without a key channel: %v", err)
	}
}

func TestKeyChannelInvoke(t *testing.T) {
	rig := newKeyRig(t)
	ctx := context.Background()
	code, _ := tiny.Module("tinyinc")
	if _, err := rig.api.Deploy(ctx, client.DeployRequest{Name: "inc", Version: "1", Code: code}); err != nil {
		t.Fatal(err)
	}
	s, err := rig.api.OpenSession(ctx, rig.kmeC, "client", "gateway", session.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Invoke(ctx, "inc", []byte(`{"value":7}`), nil)
	if err != nil || string(res.Output) != `{"value":8}` {
		t.Fatalf("sealed invoke: %+v %v", res, err)
	}
	// The election key came from this session: its commitment matches the
	// key the client derives itself, and the record names the QKD key.
	rid, _ := hex.DecodeString(res.RequestID)
	if err := election.VerifyWithSessionKey(res.Election, s.SessionKey()); err != nil {
		t.Fatalf("election key not from the session: %v", err)
	}
	if res.Election.KeyID != s.KeyID || !bytes.Equal(res.Election.RequestID, rid) {
		t.Fatalf("record names key %q request %x", res.Election.KeyID, res.Election.RequestID)
	}
	if _, err := s.Invoke(ctx, "missing", nil, nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("sealed invoke of an unknown function: %v", err)
	}
}

// The gateway can use any ETSI GS QKD 014 key manager over HTTPS, as its
// own SAE, instead of the one in its process.
func TestKeyChannelExternalKME(t *testing.T) {
	rig := newKeyRigWith(t, overHTTPS, nil)
	if _, ok := rig.keys.KME.(*kme.Client); !ok {
		t.Fatalf("key source is %T", rig.keys.KME)
	}
	ctx := context.Background()
	s, err := rig.api.OpenSession(ctx, rig.kmeC, "client", "gateway", session.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Submit(ctx, []byte("over https"), client.SubmitOptions{IdempotencyKey: "x1"}); err != nil {
		t.Fatalf("sealed submit: %v", err)
	}
	pool, _ := rig.km.Pool("client", "gateway")
	if pool.Pending() != 0 {
		t.Fatalf("the gateway left %d keys at the key manager", pool.Pending())
	}
	if _, err := rig.keys.KME.DecKeys(ctx, "client", []string{s.KeyID}); !errors.Is(err, kme.ErrBadRequest) {
		t.Fatalf("a QKD key was delivered twice: %v", err)
	}
	// What the KME refuses (400) is the client's 404; a malformed ID is
	// refused before asking.
	one := 1
	ks, err := rig.kmeC.EncKeys(ctx, "gateway", kme.KeyRequest{Number: &one})
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.hello(t, "client", "9b2f3c1e-0000-4000-8000-000000000000", ks[0].Key); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown key ID: %v", err)
	}
	if err := rig.hello(t, "mallory", ks[0].KeyID, ks[0].Key); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("wrong master SAE: %v", err)
	}
	if err := rig.hello(t, "client", "not-a-uuid", ks[0].Key); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("malformed key ID: %v", err)
	}
	// A key manager that cannot be reached is 503, and the key stays.
	rig.kts.Close()
	var ae *client.APIError
	if err := rig.hello(t, "client", ks[0].KeyID, ks[0].Key); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("key manager down: %v", err)
	}
	if pool.Pending() != 1 {
		t.Errorf("pending %d, want the untouched key", pool.Pending())
	}
}

// A key manager that answers with something else than the key asked for,
// or fails, is 503; it never crashes the gateway nor opens a session.
func TestKeyChannelKeySourceFaults(t *testing.T) {
	var mu sync.Mutex
	var fault keySourceFunc
	rig := newKeyRigWith(t, inProcess, func(real KeySource) KeySource {
		return keySourceFunc(func(ctx context.Context, master string, ids []string) ([]kme.Key, error) {
			mu.Lock()
			f := fault
			mu.Unlock()
			if f == nil {
				return real.DecKeys(ctx, master, ids)
			}
			return f(ctx, master, ids)
		})
	})
	key := make([]byte, 32)
	other := "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	cases := []struct {
		name string
		f    keySourceFunc
	}{
		{"no keys", func(context.Context, string, []string) ([]kme.Key, error) { return nil, nil }},
		{"two keys", func(_ context.Context, _ string, ids []string) ([]kme.Key, error) {
			return []kme.Key{{KeyID: ids[0], Key: key}, {KeyID: other, Key: key}}, nil
		}},
		{"another key", func(context.Context, string, []string) ([]kme.Key, error) {
			return []kme.Key{{KeyID: other, Key: key}}, nil
		}},
		{"empty key", func(_ context.Context, _ string, ids []string) ([]kme.Key, error) {
			return []kme.Key{{KeyID: ids[0]}}, nil
		}},
		{"unauthorized", func(context.Context, string, []string) ([]kme.Key, error) {
			return nil, &kme.Error{Status: http.StatusUnauthorized, Message: "client certificate required"}
		}},
		{"protocol", func(context.Context, string, []string) ([]kme.Key, error) { return nil, kme.ErrProtocol }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			fault = c.f
			mu.Unlock()
			var ae *client.APIError
			err := rig.hello(t, "client", "9b2f3c1e-0000-4000-8000-000000000000", key)
			if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
				t.Fatalf("got %v, want 503", err)
			}
		})
	}
	mu.Lock()
	fault = nil
	mu.Unlock()
	if _, err := rig.api.OpenSession(context.Background(), rig.kmeC, "client", "gateway", session.DefaultConfig()); err != nil {
		t.Fatalf("session after faults: %v", err)
	}
}

// TestKeyManagerStatus: GET /v1/keymanager reports the in-process key
// manager's pool with its fill level and the QKD blocks that filled it
// (an error rate near the channel's 2% noise); a KME in another process
// as external with no pools; a node with no key channel as none.
func TestKeyManagerStatus(t *testing.T) {
	ctx := context.Background()
	rig := newKeyRig(t)
	st, err := rig.api.KeyManager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := rig.km.Pool("client", "gateway")
	if st.KeyManager != client.KeyManagerInProcess || st.GatewaySAE != "gateway" || len(st.Pools) != 1 {
		t.Fatalf("in process: %+v", st)
	}
	p := st.Pools[0]
	if p.Master != "client" || p.Slave != "gateway" || p.StoredKeys != pool.Stored() || p.StoredKeys == 0 || len(p.Recent) == 0 {
		t.Fatalf("pool %+v (stored %d)", p, pool.Stored())
	}
	for _, b := range p.Recent {
		if b.Aborted || b.QBER < 0.005 || b.QBER > 0.06 || b.Threshold <= b.QBER || b.Keys == 0 || b.KeyBits == 0 {
			t.Fatalf("block %+v", b)
		}
	}

	ext := newKeyRigWith(t, overHTTPS, nil)
	if st, err := ext.api.KeyManager(ctx); err != nil || st.KeyManager != client.KeyManagerExternal || st.Pools == nil || len(st.Pools) != 0 {
		t.Fatalf("external: %+v %v", st, err)
	}

	_, c, _ := startAPI(t, 1, 1)
	if st, err := c.KeyManager(ctx); err != nil || st.KeyManager != client.KeyManagerNone || st.GatewaySAE != "" || st.Pools == nil || len(st.Pools) != 0 {
		t.Fatalf("no key channel: %+v %v", st, err)
	}
}
