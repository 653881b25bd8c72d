package kme

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"qledger/qkd"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Logger = nil
	return cfg
}

func fill(t testing.TB, srv *Server, master, slave string, nbytes int) {
	t.Helper()
	p, ok := srv.Pool(master, slave)
	if !ok {
		t.Fatal("no pool")
	}
	b := make([]byte, nbytes)
	for i := range b {
		b[i] = byte(i * 7)
	}
	p.Add(b)
}

type rawResp struct {
	status int
	body   []byte
	tls    *tls.ConnectionState
}

func do(t *testing.T, hc *http.Client, method, url, body string) rawResp {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResp{resp.StatusCode, b, resp.TLS}
}

// errorBody checks the ETSI error body.
func errorBody(t *testing.T, r rawResp) Error {
	t.Helper()
	var e Error
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" {
		t.Fatalf("status %d: body %q is not {message, details}", r.status, r.body)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	if _, ok := raw["message"]; !ok {
		t.Fatalf("no message field: %s", r.body)
	}
	return e
}

func TestStatus(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 32*10+5)
	r := do(t, p.httpClient(t, "alice"), "GET", ts.URL+"/api/v1/keys/bob/status", "")
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var st Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	want := Status{SourceKMEID: "qledger-kme", TargetKMEID: "qledger-kme", MasterSAEID: "alice", SlaveSAEID: "bob",
		KeySize: 256, StoredKeyCount: 10, MaxKeyCount: 100000, MaxKeyPerRequest: 128, MaxKeySize: 8192, MinKeySize: 64}
	if st != want {
		t.Errorf("status\n got %+v\nwant %+v", st, want)
	}
	for _, f := range []string{"source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID", "key_size",
		"stored_key_count", "max_key_count", "max_key_per_request", "max_key_size", "min_key_size", "max_SAE_ID_count"} {
		if !bytes.Contains(r.body, []byte(`"`+f+`"`)) {
			t.Errorf("status lacks %s", f)
		}
	}
}

// TestDeliveredOnceToEachSide: the master gets each key once (taken from
// the pool), the slave once (then erased), and no other SAE ever.
func TestDeliveredOnceToEachSide(t *testing.T) {
	for _, form := range []string{"POST", "GET"} {
		t.Run(form, func(t *testing.T) {
			srv, ts, p := startKME(t, testConfig())
			fill(t, srv, "alice", "bob", 32*4)
			alice, bob, carol := p.httpClient(t, "alice"), p.httpClient(t, "bob"), p.httpClient(t, "carol")
			base := ts.URL + "/api/v1/keys/"
			var r rawResp
			if form == "POST" {
				r = do(t, alice, "POST", base+"bob/enc_keys", `{"number":3,"size":256}`)
			} else {
				r = do(t, alice, "GET", base+"bob/enc_keys?number=3&size=256", "")
			}
			if r.status != 200 {
				t.Fatalf("enc_keys %d %s", r.status, r.body)
			}
			var kc KeyContainer
			if err := json.Unmarshal(r.body, &kc); err != nil || len(kc.Keys) != 3 {
				t.Fatalf("enc_keys body %s", r.body)
			}
			ids := []string{kc.Keys[0].KeyID, kc.Keys[1].KeyID, kc.Keys[2].KeyID}
			if kc.Keys[0].KeyID == kc.Keys[1].KeyID || len(kc.Keys[0].Key) != 32 || bytes.Equal(kc.Keys[0].Key, kc.Keys[1].Key) {
				t.Fatalf("keys %+v", kc.Keys)
			}
			decBody := fmt.Sprintf(`{"key_IDs":[{"key_ID":%q},{"key_ID":%q},{"key_ID":%q}]}`, ids[0], ids[1], ids[2])
			decURL := base + "alice/dec_keys?key_ID=" + ids[0] + "&key_ID=" + ids[1] + "&key_ID=" + ids[2]
			dec := func(hc *http.Client) rawResp {
				if form == "POST" {
					return do(t, hc, "POST", base+"alice/dec_keys", decBody)
				}
				return do(t, hc, "GET", decURL, "")
			}
			// Never to the wrong SAE: carol (authenticated, not in the pair)
			// and alice herself are refused.
			for name, hc := range map[string]*http.Client{"carol": carol, "alice": alice} {
				if r := dec(hc); r.status != 400 {
					t.Fatalf("%s got %d %s", name, r.status, r.body)
				} else {
					errorBody(t, r)
				}
			}
			r = dec(bob)
			if r.status != 200 {
				t.Fatalf("bob dec_keys %d %s", r.status, r.body)
			}
			var got KeyContainer
			_ = json.Unmarshal(r.body, &got)
			for i := range kc.Keys {
				if got.Keys[i].KeyID != kc.Keys[i].KeyID || !bytes.Equal(got.Keys[i].Key, kc.Keys[i].Key) {
					t.Fatalf("key %d differs between master and slave", i)
				}
			}
			// Erased after delivery.
			if r := dec(bob); r.status != 400 || !strings.Contains(errorBody(t, r).Message, "not found") {
				t.Fatalf("second dec_keys: %d %s", r.status, r.body)
			}
			// The one remaining key is still available, then the pool is empty.
			if r := do(t, alice, "POST", base+"bob/enc_keys", `{"number":2}`); r.status != 503 {
				t.Fatalf("over-request: %d %s", r.status, r.body)
			}
			if r := do(t, alice, "POST", base+"bob/enc_keys", ``); r.status != 200 {
				t.Fatalf("last key: %d %s", r.status, r.body)
			}
			r = do(t, alice, "POST", base+"bob/enc_keys", `{}`)
			if r.status != 503 {
				t.Fatalf("empty pool: %d %s", r.status, r.body)
			}
			errorBody(t, r)
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 32*100)
	alice := p.httpClient(t, "alice")
	base := ts.URL + "/api/v1/keys/"
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, method, path, body string
		status                   int
		detail                   string
	}{
		{"number zero", "POST", "bob/enc_keys", `{"number":0}`, 400, "number"},
		{"number negative", "POST", "bob/enc_keys", `{"number":-3}`, 400, "number"},
		{"number too big", "POST", "bob/enc_keys", `{"number":129}`, 400, "number"},
		{"number string", "POST", "bob/enc_keys", `{"number":"2"}`, 400, "error"},
		{"number float", "POST", "bob/enc_keys", `{"number":1.5}`, 400, "error"},
		{"size not multiple of 8", "POST", "bob/enc_keys", `{"size":100}`, 400, "size"},
		{"size too small", "POST", "bob/enc_keys", `{"size":8}`, 400, "size"},
		{"size too big", "POST", "bob/enc_keys", `{"size":8200}`, 400, "size"},
		{"size negative", "POST", "bob/enc_keys", `{"size":-256}`, 400, "size"},
		{"malformed json", "POST", "bob/enc_keys", `{"number":`, 400, "error"},
		{"trailing json", "POST", "bob/enc_keys", `{} {}`, 400, "error"},
		{"additional slaves", "POST", "bob/enc_keys", `{"additional_slave_SAE_IDs":["carol"]}`, 400, "additional_slave_SAE_IDs"},
		{"mandatory extension", "POST", "bob/enc_keys", `{"extension_mandatory":[{"x":1}]}`, 400, "extension_mandatory"},
		{"GET number text", "GET", "bob/enc_keys?number=abc", "", 400, "number"},
		{"GET number zero", "GET", "bob/enc_keys?number=0", "", 400, "number"},
		{"GET number overflow", "GET", "bob/enc_keys?number=99999999999999999999", "", 400, "number"},
		{"GET size odd", "GET", "bob/enc_keys?size=255", "", 400, "size"},
		{"GET repeated number", "GET", "bob/enc_keys?number=1&number=2", "", 400, "number"},
		{"SAE ID bad chars", "GET", "bob%24x/status", "", 400, "SAE_ID"},
		{"SAE ID too long", "POST", long + "/enc_keys", `{}`, 400, "SAE_ID"},
		{"SAE ID unknown pair", "POST", "carol/enc_keys", `{}`, 400, "slave_SAE_ID"},
		{"status unknown pair", "GET", "carol/status", "", 400, "SAE_ID"},
		{"dec key ID not uuid", "POST", "bob/dec_keys", `{"key_IDs":[{"key_ID":"nope"}]}`, 400, "key_ID"},
		{"dec key ID braces", "POST", "bob/dec_keys", `{"key_IDs":[{"key_ID":"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}"}]}`, 400, "key_ID"},
		{"dec key ID duplicate", "POST", "bob/dec_keys", `{"key_IDs":[{"key_ID":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"},{"key_ID":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}]}`, 400, "key_ID"},
		{"dec key ID unknown", "POST", "bob/dec_keys", `{"key_IDs":[{"key_ID":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}]}`, 400, "key_IDs"},
		{"dec empty list", "POST", "bob/dec_keys", `{"key_IDs":[]}`, 400, "key_IDs"},
		{"dec empty body", "POST", "bob/dec_keys", ``, 400, "body"},
		{"dec GET no key_ID", "GET", "bob/dec_keys", "", 400, "key_IDs"},
		{"dec GET bad key_ID", "GET", "bob/dec_keys?key_ID=123", "", 400, "key_ID"},
		{"unknown op", "GET", "bob/keys", "", 404, "path"},
		{"no op", "GET", "bob", "", 404, "path"},
		{"status by POST", "POST", "bob/status", "", 405, "method"},
		{"enc_keys by PUT", "PUT", "bob/enc_keys", "{}", 405, "method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, alice, c.method, base+c.path, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			e := errorBody(t, r)
			found := false
			for _, d := range e.Details {
				if _, ok := d[c.detail]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("details %v lack %q", e.Details, c.detail)
			}
		})
	}
	// None of the bad requests consumed key material.
	if p, _ := srv.Pool("alice", "bob"); p.Stored() != 100 || p.Pending() != 0 {
		t.Errorf("pool changed: stored %d pending %d", p.Stored(), p.Pending())
	}
}

func TestUnauthorized(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 320)
	anon := p.httpClient(t, "")
	for _, path := range []string{"bob/status", "bob/enc_keys", "alice/dec_keys?key_ID=6ba7b810-9dad-11d1-80b4-00c04fd430c8", "nonsense"} {
		r := do(t, anon, "GET", ts.URL+"/api/v1/keys/"+path, "")
		if r.status != 401 {
			t.Errorf("%s without certificate: %d %s", path, r.status, r.body)
		}
		errorBody(t, r)
	}
	r := do(t, anon, "POST", ts.URL+"/api/v1/keys/bob/enc_keys", `{"number":1}`)
	if r.status != 401 {
		t.Errorf("POST without certificate: %d", r.status)
	}
	// A certificate from another CA does not even complete the handshake.
	other := newPKI(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ClientTLSConfig(other.cert(t, "alice", false), p.pool)}}
	if _, err := hc.Get(ts.URL + "/api/v1/keys/bob/status"); err == nil {
		t.Error("certificate from a foreign CA accepted")
	}
	// A certificate whose name is not a valid SAE ID.
	r = do(t, p.httpClient(t, "alice smith"), "GET", ts.URL+"/api/v1/keys/bob/status", "")
	if r.status != 401 {
		t.Errorf("invalid SAE name in certificate: %d", r.status)
	}
	if pl, _ := srv.Pool("alice", "bob"); pl.Stored() != 10 {
		t.Errorf("pool changed: %d", pl.Stored())
	}
}

// TestNegotiatedCurve: the KME's TLS negotiates the hybrid post-quantum
// key exchange X25519MLKEM768, and refuses a client offering only X25519.
func TestNegotiatedCurve(t *testing.T) {
	_, ts, p := startKME(t, testConfig())
	r := do(t, p.httpClient(t, "alice"), "GET", ts.URL+"/api/v1/keys/bob/status", "")
	if r.tls == nil || r.tls.CurveID != tls.X25519MLKEM768 || r.tls.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %v (version %x)", r.tls.CurveID, r.tls.Version)
	}
	cfg := ClientTLSConfig(p.cert(t, "alice", false), p.pool)
	conn, err := tls.Dial("tcp", ts.Listener.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cs := conn.ConnectionState(); cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("tls.Dial negotiated %v", cs.CurveID)
	}
	conn.Close()
	cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	if c, err := tls.Dial("tcp", ts.Listener.Addr().String(), cfg); err == nil {
		c.Close()
		t.Error("classical-only client accepted")
	}
}

func TestPendingExpiry(t *testing.T) {
	cfg := testConfig()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg.PendingTTL = time.Minute
	srv, ts, p := startKME(t, cfg)
	fill(t, srv, "alice", "bob", 64)
	c := mustClient(t, ts.URL, p.httpClient(t, "alice"))
	keys, err := c.EncKeys(context.Background(), "bob", KeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	_, err = mustClient(t, ts.URL, p.httpClient(t, "bob")).DecKeys(context.Background(), "alice", []string{keys[0].KeyID})
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("expired key delivered: %v", err)
	}
}

func TestConcurrentRequestsNeverShareKeys(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	const total = 200
	p0, _ := srv.Pool("alice", "bob")
	random := make([]byte, 32*total)
	_, _ = rand.Read(random)
	p0.Add(random)
	alice := mustClient(t, ts.URL, p.httpClient(t, "alice"))
	bob := mustClient(t, ts.URL, p.httpClient(t, "bob"))
	var mu sync.Mutex
	seen := map[string]bool{}
	material := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				keys, err := alice.EncKeys(context.Background(), "bob", KeyRequest{Number: ptr(3)})
				if errors.Is(err, ErrUnavailable) {
					keys, err = alice.EncKeys(context.Background(), "bob", KeyRequest{})
					if errors.Is(err, ErrUnavailable) {
						return
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				var ids []string
				for _, k := range keys {
					ids = append(ids, k.KeyID)
				}
				got, err := bob.DecKeys(context.Background(), "alice", ids)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, k := range keys {
					if seen[k.KeyID] || material[string(k.Key)] || !bytes.Equal(got[i].Key, k.Key) {
						t.Errorf("key %s delivered twice or differs", k.KeyID)
					}
					seen[k.KeyID], material[string(k.Key)] = true, true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("%d keys delivered, %d stored", len(seen), total)
	}
}

func ptr[T any](v T) *T { return &v }

func mustClient(t testing.TB, url string, hc *http.Client) *Client {
	t.Helper()
	c, err := NewClient(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 32*8)
	ctx := context.Background()
	alice := mustClient(t, ts.URL, p.httpClient(t, "alice"))
	bob := mustClient(t, ts.URL+"/api/v1/keys/", p.httpClient(t, "bob"))
	st, err := alice.Status(ctx, "bob")
	if err != nil || st.StoredKeyCount != 8 || st.SlaveSAEID != "bob" {
		t.Fatalf("status %+v %v", st, err)
	}
	k1, err := alice.EncKeys(ctx, "bob", KeyRequest{Number: ptr(2), Size: ptr(512)})
	if err != nil || len(k1) != 2 || len(k1[0].Key) != 64 {
		t.Fatalf("enc %v %v", k1, err)
	}
	k2, err := alice.EncKeysGet(ctx, "bob", 1, 128)
	if err != nil || len(k2) != 1 || len(k2[0].Key) != 16 {
		t.Fatalf("enc get %v %v", k2, err)
	}
	d1, err := bob.DecKeys(ctx, "alice", []string{k1[0].KeyID, k1[1].KeyID})
	if err != nil || !bytes.Equal(d1[1].Key, k1[1].Key) {
		t.Fatalf("dec %v", err)
	}
	d2, err := bob.DecKeysGet(ctx, "alice", []string{k2[0].KeyID})
	if err != nil || !bytes.Equal(d2[0].Key, k2[0].Key) {
		t.Fatalf("dec get %v", err)
	}
	_, err = bob.DecKeys(ctx, "alice", []string{k2[0].KeyID})
	var e *Error
	if !errors.Is(err, ErrBadRequest) || !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
		t.Fatalf("re-fetch: %v", err)
	}
	if _, err := alice.EncKeys(ctx, "bob", KeyRequest{Number: ptr(100)}); !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("over-request: %v", err)
	}
	if _, err := alice.EncKeys(ctx, "bob", KeyRequest{Number: ptr(5)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("insufficient: %v", err)
	}
	anon := mustClient(t, ts.URL, p.httpClient(t, ""))
	if _, err := anon.Status(ctx, "bob"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
	if _, err := alice.Status(ctx, "not valid"); !errors.Is(err, ErrInvalidSAEID) {
		t.Fatalf("client-side SAE check: %v", err)
	}
	for _, u := range []string{"", "localhost:80", "://x"} {
		if _, err := NewClient(u, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewClient(%q) = %v", u, err)
		}
	}
}

// TestFillFromLink: the pool is filled by the BB84 engine and both SAEs
// obtain identical keys.
func TestFillFromLink(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Channel.Noise = 0.02
	qc.Seed = []byte("kme-fill")
	link, err := qkd.NewLink(qc)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := srv.Pool("alice", "bob")
	if err := pool.Fill(context.Background(), link, 50, 3); err != nil {
		t.Fatal(err)
	}
	if pool.Stored() < 50 {
		t.Fatalf("stored %d", pool.Stored())
	}
	ctx := context.Background()
	keys, err := mustClient(t, ts.URL, p.httpClient(t, "alice")).EncKeys(ctx, "bob", KeyRequest{Number: ptr(4)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mustClient(t, ts.URL, p.httpClient(t, "bob")).DecKeys(ctx, "alice", []string{keys[0].KeyID, keys[3].KeyID})
	if err != nil || !bytes.Equal(got[1].Key, keys[3].Key) {
		t.Fatalf("dec: %v", err)
	}
	// An eavesdropped link never fills the pool.
	qc.Channel.Eve = 1
	bad, _ := qkd.NewLink(qc)
	pool2, _ := srv.Pool("bob", "alice")
	err = pool2.Fill(ctx, bad, 1, 2)
	if !errors.Is(err, qkd.ErrQBERTooHigh) || pool2.Stored() != 0 {
		t.Fatalf("eavesdropped fill: %v, stored %d", err, pool2.Stored())
	}
	// The pools report their fill level and the blocks that filled them:
	// the error rate near the channel's noise when honest, aborts with the
	// reason when eavesdropped; no key material.
	st := pool.Status()
	if st.StoredKeys != pool.Stored() || st.KeySizeBits != 256 || len(st.Recent) == 0 || len(st.Recent) > RecentBlocks {
		t.Fatalf("status %+v", st)
	}
	for _, b := range st.Recent {
		if b.Aborted || b.QBER < 0.005 || b.QBER > 0.06 || b.Keys == 0 || b.KeyBits != 256*b.Keys || b.SiftedBits == 0 || b.Time.IsZero() {
			t.Fatalf("honest block %+v", b)
		}
	}
	bst := pool2.Status()
	if len(bst.Recent) != 2 || bst.StoredKeys != 0 {
		t.Fatalf("eavesdropped pool status %+v", bst)
	}
	for _, b := range bst.Recent {
		if !b.Aborted || b.QBER <= b.Threshold || !strings.Contains(b.AbortReason, "QBER") || b.Keys != 0 || b.KeyBits != 0 {
			t.Fatalf("eavesdropped block %+v", b)
		}
	}
	all := srv.Pools()
	if len(all) < 2 || all[0].Master > all[1].Master {
		t.Fatalf("pools %+v", all)
	}
	if n := len(srv.Local("bob").Pools()); n != len(all) {
		t.Fatalf("bob is in every pool, Local sees %d of %d", n, len(all))
	}
	if n := len(srv.Local("nobody").Pools()); n != 0 {
		t.Fatalf("an SAE in no pair sees %d pools", n)
	}
	// Refill loop stops with its context.
	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	qc.Channel.Eve = 0
	good, _ := qkd.NewLink(qc)
	if err := srv.Refill(ctx2, "alice", "bob", good, 10, 60, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("refill: %v", err)
	}
}

func TestConfigAndIDs(t *testing.T) {
	for _, m := range []func(*Config){
		func(c *Config) { c.KMEID = "" },
		func(c *Config) { c.KeySize = 100 },
		func(c *Config) { c.MinKeySize = 12 },
		func(c *Config) { c.MaxKeySize = 32 },
		func(c *Config) { c.MaxKeysPerRequest = 0 },
		func(c *Config) { c.MaxBodyBytes = 10 },
		func(c *Config) { c.PendingTTL = -1 },
	} {
		c := DefaultConfig()
		m(&c)
		if _, err := NewServer(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for id, ok := range map[string]bool{"alice": true, "SAE-1.node_2~x": true, "": false, "a b": false,
		"a/b": false, "..": false, "é": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false} {
		if err := ValidateSAEID(id); (err == nil) != ok {
			t.Errorf("ValidateSAEID(%q) = %v", id, err)
		} else if err != nil && !errors.Is(err, ErrInvalidSAEID) {
			t.Errorf("error %v is not ErrInvalidSAEID", err)
		}
	}
	srv, _ := NewServer(DefaultConfig())
	if _, err := srv.AddPair("a", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddPair("a", "b"); !errors.Is(err, ErrPoolExists) {
		t.Errorf("duplicate pair: %v", err)
	}
	if _, err := srv.AddPair("a", "b c"); !errors.Is(err, ErrInvalidSAEID) {
		t.Errorf("bad SAE: %v", err)
	}
}

func TestInProcessAccess(t *testing.T) {
	srv, _ := NewServer(testConfig())
	if _, err := srv.AddPair("client", "gateway"); err != nil {
		t.Fatal(err)
	}
	fill(t, srv, "client", "gateway", 64)
	keys, err := srv.EncKeys("client", "gateway", 1, 256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DecKeys("client", "intruder", []string{keys[0].KeyID}); !errors.Is(err, ErrUnknownPair) {
		t.Fatalf("wrong slave: %v", err)
	}
	got, err := srv.DecKeys("client", "gateway", []string{keys[0].KeyID})
	if err != nil || !bytes.Equal(got[0].Key, keys[0].Key) {
		t.Fatalf("dec: %v", err)
	}
	if _, err := srv.DecKeys("client", "gateway", []string{keys[0].KeyID}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second dec: %v", err)
	}
	for _, c := range []struct {
		number, size int
		want         error
	}{{0, 256, ErrBadRequest}, {1, 7, ErrBadRequest}, {2, 256, ErrUnavailable}, {2, 256, ErrInsufficient}} {
		if _, err := srv.EncKeys("client", "gateway", c.number, c.size); !errors.Is(err, c.want) {
			t.Errorf("EncKeys(%d, %d) = %v, want %v", c.number, c.size, err, c.want)
		}
	}
	if _, err := srv.EncKeys("client", "nobody", 1, 256); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("unknown pair: %v", err)
	}
	if _, err := srv.DecKeys("client", "gateway", []string{"x"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad ID: %v", err)
	}
}

func TestPendingCap(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeyCount = 4
	srv, _ := NewServer(cfg)
	p, _ := srv.AddPair("m", "s")
	p.Add(make([]byte, 32*4))
	if _, err := srv.EncKeys("m", "s", 3, 256); err != nil {
		t.Fatal(err)
	}
	p.Add(make([]byte, 32*3))
	if _, err := srv.EncKeys("m", "s", 2, 256); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("pending over the cap: %v", err)
	}
	if p.Pending() != 3 {
		t.Fatalf("pending %d", p.Pending())
	}
}

// Methods are compared exactly: a method that is a substring of an allowed
// one ("ET" of "GET", "OST" of "POST") is refused like any other, with the
// standard error body and an Allow header, and takes no key.
func TestKMEMethodsMatchExactly(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 32*10)
	alice := p.httpClient(t, "alice")
	allow := map[string]string{"status": "GET", "enc_keys": "GET, POST", "dec_keys": "GET, POST"}
	for _, method := range []string{"ET", "T", "E", "G", "GE", "OST", "PO", "P", "get", "post", "Get", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"} {
		for op, want := range allow {
			t.Run(method+" "+op, func(t *testing.T) {
				path := ts.URL + "/api/v1/keys/bob/" + op
				if op == "dec_keys" {
					path += "?key_ID=6ba7b810-9dad-11d1-80b4-00c04fd430c8"
				}
				req, _ := http.NewRequest(method, path, nil)
				resp, err := alice.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Fatalf("status %d, want 405: %s", resp.StatusCode, body)
				}
				if got := resp.Header.Get("Allow"); got != want {
					t.Errorf("Allow %q, want %q", got, want)
				}
				if method == http.MethodHead {
					return
				}
				e := errorBody(t, rawResp{status: resp.StatusCode, body: body})
				if len(e.Details) == 0 || e.Details[0]["method"] != method {
					t.Errorf("details %v do not name method %q", e.Details, method)
				}
			})
		}
	}
	if pool, _ := srv.Pool("alice", "bob"); pool.Stored() != 10 || pool.Pending() != 0 {
		t.Errorf("refused methods consumed key: stored %d pending %d", pool.Stored(), pool.Pending())
	}
}

// Keys from the link keep the IDs the BB84 engine gave them when handed
// out whole; keys cut another way get fresh IDs.
func TestLinkKeyIDsKept(t *testing.T) {
	srv, ts, p := startKME(t, testConfig())
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 18
	qc.Seed = []byte("kme-ids")
	link, err := qkd.NewLink(qc)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := link.Next(context.Background())
	if err != nil || len(blk.Keys) < 8 {
		t.Fatalf("block: %d keys, %v", len(blk.Keys), err)
	}
	lk := blk.Keys
	engine := map[string]bool{}
	for _, k := range lk {
		engine[k.ID.String()] = true
	}
	pool, _ := srv.Pool("alice", "bob")
	if n := pool.AddKeys(lk[:4]); n != 4*32 {
		t.Fatalf("added %d bytes", n)
	}
	// Over HTTPS, both SAEs see the engine's IDs.
	ctx := context.Background()
	got, err := mustClient(t, ts.URL, p.httpClient(t, "alice")).EncKeys(ctx, "bob", KeyRequest{Number: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range got {
		if k.KeyID != lk[i].ID.String() || !bytes.Equal(k.Key, lk[i].Bytes) {
			t.Fatalf("key %d: ID %s, want the engine's %s", i, k.KeyID, lk[i].ID)
		}
	}
	dec, err := mustClient(t, ts.URL, p.httpClient(t, "bob")).DecKeys(ctx, "alice", []string{lk[1].ID.String()})
	if err != nil || !bytes.Equal(dec[0].Key, lk[1].Bytes) {
		t.Fatalf("slave fetch by engine ID: %v", err)
	}
	// A pending ID cannot be added again, nor a stored one.
	if n := pool.AddKeys(lk[:1]); n != 0 {
		t.Errorf("re-added a pending key ID: %d bytes", n)
	}
	if n := pool.AddKeys(lk[2:3]); n != 0 {
		t.Errorf("re-added a stored key ID: %d bytes", n)
	}

	take := func(size int) string {
		t.Helper()
		ks, err := srv.EncKeys("alice", "bob", 1, size)
		if err != nil {
			t.Fatal(err)
		}
		return ks[0].KeyID
	}
	// Two link keys as one: a new ID.
	if id := take(512); engine[id] {
		t.Errorf("a 512-bit key took engine ID %s", id)
	}
	// Material without IDs, then a link key cut in four, then a whole one.
	pool.Add(make([]byte, 32))
	pool.AddKeys(lk[4:6])
	if id := take(256); engine[id] {
		t.Errorf("anonymous material took engine ID %s", id)
	}
	for range 4 {
		if id := take(64); engine[id] {
			t.Errorf("a cut key took engine ID %s", id)
		}
	}
	if id := take(256); id != lk[5].ID.String() {
		t.Errorf("whole key after an aligned cut: ID %s, want %s", id, lk[5].ID)
	}
	// A key that straddles two link keys gets a new ID.
	pool.AddKeys(lk[6:8])
	take(64)
	if id := take(256); engine[id] {
		t.Errorf("a straddling key took engine ID %s", id)
	}
}

func TestKMELocal(t *testing.T) {
	srv, _, _ := startKME(t, testConfig())
	fill(t, srv, "alice", "bob", 32*4)
	ctx := context.Background()
	alice, bob, carol := srv.Local("alice"), srv.Local("bob"), srv.Local("carol")
	st, err := alice.Status(ctx, "bob")
	if err != nil || st.MasterSAEID != "alice" || st.SlaveSAEID != "bob" || st.StoredKeyCount != 4 {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := carol.Status(ctx, "alice"); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("status of no pair: %v", err)
	}
	keys, err := alice.EncKeys(ctx, "bob", KeyRequest{Number: ptr(2)})
	if err != nil || len(keys) != 2 {
		t.Fatalf("enc: %v", err)
	}
	if _, err := alice.EncKeys(ctx, "bob", KeyRequest{AdditionalSlaveSAEIDs: []string{"carol"}}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("additional slaves: %v", err)
	}
	if _, err := carol.DecKeys(ctx, "alice", []string{keys[0].KeyID}); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("another SAE fetched the key: %v", err)
	}
	got, err := bob.DecKeys(ctx, "alice", []string{keys[1].KeyID})
	if err != nil || !bytes.Equal(got[0].Key, keys[1].Key) {
		t.Fatalf("dec: %v", err)
	}
	if _, err := bob.DecKeys(ctx, "alice", []string{keys[1].KeyID}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("second fetch: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := bob.DecKeys(done, "alice", []string{keys[0].KeyID}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if pool, _ := srv.Pool("alice", "bob"); pool.Pending() != 1 {
		t.Errorf("pending %d, want 1", pool.Pending())
	}
}
