// Package explorer is the auditors' chain explorer: web pages embedded in
// the binary and a local, read-only proxy to a node that holds the
// auditor's certificate, since a browser holds none (as kubectl proxy
// does for a cluster's API).
//
// The proxy passes GET requests for the read endpoints of the API (under
// /v1/) to the node and nothing else: no write, no operation, no
// snapshot. It answers only requests addressed to a loopback name, so a
// web page elsewhere cannot reach it through DNS rebinding. A note key it
// passes on has had its endorsement checked against the cluster CA, so the
// page can trust the key it verifies checkpoint signatures with. One path
// is its own: /x/record decodes an execution record for the page.
package explorer

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api/client"
)

//go:embed web
var web embed.FS

// Errors of the package.
var (
	// ErrConfig: a Config that cannot work.
	ErrConfig = errors.New("explorer: bad config")
)

// Config configures an explorer.
type Config struct {
	// Upstream is the node's API base URL (https://host:port).
	Upstream string
	// Transport carries requests to the node: with TLS, the auditor's
	// client certificate. nil is http.DefaultTransport.
	Transport http.RoundTripper
	// Logger; nil logs nothing.
	Logger hclog.Logger
}

// Explorer serves the pages and the read-only proxy. Safe for concurrent
// use.
type Explorer struct {
	cfg    Config
	node   *client.Client
	proxy  *httputil.ReverseProxy
	static http.Handler
	logger hclog.Logger
	verify func(client.NoteKey) error
}

// readable are the API paths the proxy passes on (GET only).
var readable = regexp.MustCompile(`^/v1/(` +
	`cluster|keymanager|tx/[0-9a-fA-F]{64}|functions|functions/[^/]+|data|data/[^/]+/shares/[0-9]+|invocations/[0-9a-fA-F]{64}|openapi\.json|` +
	`groups/[0-9]+/(head|blocks|blocks/[0-9]+|proof/consistency|checkpoint|checkpoint/key|tile/[0-9a-z./]+)` +
	`)$`)

// New returns an explorer for cfg. verify checks a note key's endorsement
// (client.VerifyNoteKey against the cluster CA); nil refuses every key.
func New(cfg Config, verify func(client.NoteKey) error) (*Explorer, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: upstream %q is not an http(s) URL", ErrConfig, cfg.Upstream)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	sub, err := fs.Sub(web, "web")
	if err != nil {
		return nil, err
	}
	node, err := client.New(strings.TrimSuffix(cfg.Upstream, "/"), &http.Client{Transport: cfg.Transport, Timeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e := &Explorer{cfg: cfg, node: node, static: http.FileServerFS(sub), logger: cfg.Logger.Named("explorer"), verify: verify}
	e.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Header.Del("Cookie")
			r.Out.Header.Del("Authorization")
		},
		Transport:      cfg.Transport,
		ModifyResponse: e.checkKey,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e.logger.Warn("upstream failed", "path", r.URL.Path, "error", err)
			writeError(w, http.StatusBadGateway, "upstream: "+err.Error())
		},
	}
	return e, nil
}

// ServeHTTP serves the pages, and the API's read endpoints through the
// proxy.
func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		writeError(w, http.StatusForbidden, "the explorer answers only requests for a loopback address")
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == "/x/record" && r.Method == http.MethodGet {
		e.record(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "the explorer is read-only")
			return
		}
		e.static.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "the explorer is read-only: "+r.Method+" is not passed on")
		return
	}
	if !readable.MatchString(r.URL.Path) || path.Clean(r.URL.Path) != r.URL.Path {
		writeError(w, http.StatusNotFound, "the explorer does not pass on "+r.URL.Path)
		return
	}
	e.proxy.ServeHTTP(w, r)
}

// recordView is an execution record as the record page shows it.
type recordView struct {
	Group  int               `json:"group"`
	Height uint64            `json:"height"`
	TxID   string            `json:"tx_id"`
	Record client.ExecRecord `json:"record"`
}

// record answers /x/record?group=G&height=H&tx=I: the execution record in
// transaction I of group G's block H, decoded (client.DecodeExecRecord)
// for the page, which cannot decode the binary form itself.
func (e *Explorer) record(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g, err1 := strconv.Atoi(q.Get("group"))
	h, err2 := strconv.ParseUint(q.Get("height"), 10, 64)
	i, err3 := strconv.Atoi(q.Get("tx"))
	if err1 != nil || err2 != nil || err3 != nil || g < 0 || i < 0 {
		writeError(w, http.StatusBadRequest, "want ?group=G&height=H&tx=I")
		return
	}
	b, err := e.node.Block(r.Context(), g, h, "")
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	if i >= len(b.Txs) || b.Txs[i].Tx.Kind != "exec" || b.Txs[i].Withheld {
		writeError(w, http.StatusNotFound, fmt.Sprintf("transaction %d of block %d is not an execution record", i, h))
		return
	}
	rec, err := client.DecodeExecRecord(b.Txs[i].Tx.Payload)
	if err != nil {
		writeError(w, http.StatusBadGateway, "execution record: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(recordView{Group: g, Height: h, TxID: b.Txs[i].ID, Record: rec})
}

// checkKey lets a note key through only if its endorsement verifies.
func (e *Explorer) checkKey(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/checkpoint/key") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var k client.NoteKey
	if err := json.Unmarshal(body, &k); err != nil {
		return fmt.Errorf("note key: %w", err)
	}
	if e.verify == nil {
		return errors.New("no cluster CA to check the note key's endorsement with (--ca)")
	}
	if err := e.verify(k); err != nil {
		return fmt.Errorf("note key endorsement: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.Header.Set("X-Qledger-Endorsement", "verified")
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// loopbackHost reports whether a Host header names a loopback address.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(client.ErrorBody{Error: "explorer: " + msg, Code: "explorer"})
}
