// Package api is a node's HTTP/JSON interface: transactions, chain reads
// and proofs, cluster status and membership, health and metrics. Wire
// types live in api/client so the Go client shares them exactly.
//
// The package declares the small interfaces it needs from a node (Ledger,
// Membership, DataIndex, FunctionHost; Cluster is all four) and never
// touches raft itself.
package api

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"qledger/pki"
)

// Scaler changes the number of executor nodes at run time.
type Scaler interface {
	// ScaleExecutors starts or stops executor nodes until there are k and
	// returns how many there are.
	ScaleExecutors(ctx context.Context, k int) (int, error)
}

// Config configures the HTTP server.
type Config struct {
	// Origin says what of a request's origin an invocation's execution
	// record keeps besides the caller's identity; nothing by default,
	// since both can be personal data.
	Origin OriginConfig
	// MaxBodyBytes caps request bodies (413 beyond it).
	MaxBodyBytes int64
	// Server timeouts.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// RequestTimeout bounds the work behind one request.
	RequestTimeout time.Duration
	// RatePerCaller and RateBurst are each authenticated caller's token
	// bucket (requests per second; 0 = no limit); beyond it, 429.
	RatePerCaller float64
	RateBurst     int
	// MaxInvocationsPerCaller caps one authenticated caller's concurrent
	// invocations (0 = no cap); beyond it, 429.
	MaxInvocationsPerCaller int
	// Keys, if set, enables the quantum-keyed channel (/v1/session...).
	Keys *KeyChannel
	// TLS, if set, serves HTTPS (TLS 1.3) and authenticates callers by
	// client certificate: each endpoint admits the roles of its access
	// class, 401 without a certificate, 403 with another role.
	TLS *pki.Credentials
	// Scaler, if set, lets POST /v1/cluster/scale add and remove executor
	// nodes (the embedded dev cluster provides one).
	Scaler Scaler
	// Leaver, if set, lets POST /v1/node/leave make the node leave the
	// cluster and stop (a node process sets it; embedded clusters do not).
	Leaver Leaver
	// Logger; nil logs nothing.
	Logger hclog.Logger
}

// DefaultConfig returns the server defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:      2 << 20, // a 1 MiB payload in base64 plus room
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		RequestTimeout:    30 * time.Second,

		RatePerCaller:           2000,
		RateBurst:               4000,
		MaxInvocationsPerCaller: 32,
	}
}

// Validate reports the first problem with the config.
func (c *Config) Validate() error {
	if c.MaxBodyBytes < 1<<10 {
		return errors.New("api: config: MaxBodyBytes must be at least 1 KiB")
	}
	if c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 || c.RequestTimeout <= 0 {
		return errors.New("api: config: timeouts must be positive")
	}
	if c.RatePerCaller < 0 || c.RateBurst < 0 || c.MaxInvocationsPerCaller < 0 {
		return errors.New("api: config: limits must not be negative")
	}
	return nil
}

// Server serves the API of one node.
type Server struct {
	cfg Config
	// What each group of endpoints needs from the node (the same node
	// behind all four).
	ledger  Ledger
	members Membership
	data    DataIndex
	fns     FunctionHost
	logger  hclog.Logger
	mux     *http.ServeMux
	paths   map[string]bool
	// table lists every route with its access class, in registration order.
	table []routeEntry
	hs    *http.Server
	// entry serves every request: serve, wrapped in the OpenAPI contract
	// check in the test suite's builds.
	entry http.Handler
	lim   *limits
	load  groupLoad
	async asyncTable
	// execKey is this gateway's secret for election keys of invocations
	// that do not come through a quantum-keyed session.
	execKey   [32]byte
	execKeyID string
}

// New returns a server for the node c.
func New(cfg Config, c Cluster) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Keys != nil {
		if cfg.Keys.KME == nil || cfg.Keys.GatewaySAE == "" {
			return nil, errors.New("api: config: the key channel needs a key manager and the gateway's SAE ID")
		}
		cfg.Keys.init()
	}
	s := &Server{cfg: cfg, ledger: c, members: c, data: c, fns: c, logger: cfg.Logger.Named("api"), mux: http.NewServeMux(), paths: map[string]bool{}, lim: newLimits(cfg)}
	if _, err := rand.Read(s.execKey[:]); err != nil {
		return nil, err
	}
	s.execKeyID = "gateway-" + hex.EncodeToString(s.execKey[:4])
	s.routes()
	s.entry = http.HandlerFunc(s.serve)
	if contractWrap != nil {
		s.entry = contractWrap(s.entry)
	}
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          cfg.Logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return s, nil
}

// route registers h for method and pattern behind access a, and a JSON 405 for the same
// path under any other method.
func (s *Server) route(method, pattern string, a access, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+pattern, s.guard(a, h))
	s.table = append(s.table, routeEntry{method, pattern, a})
	if s.paths[pattern] {
		return
	}
	s.paths[pattern] = true
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, codeMethod, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	})
}

// routeEntry is one route: its method, mux pattern and access class.
type routeEntry struct {
	method, pattern string
	access          access
}

func (s *Server) routes() {
	s.route("POST", "/v1/tx", writers, s.submit)
	s.route("GET", "/v1/tx/{id}", readers, s.getTx)
	s.route("GET", "/v1/groups/{g}/head", readers, s.failing(s.head))
	s.route("GET", "/v1/groups/{g}/blocks/{height}", readers, s.failing(s.block))
	s.route("GET", "/v1/groups/{g}/blocks", readers, s.failing(s.blocks))
	s.route("GET", "/v1/groups/{g}/proof/consistency", readers, s.failing(s.consistency))
	s.route("GET", "/v1/cluster", readers, s.status)
	s.route("POST", "/v1/cluster/join", admins, s.join)
	s.route("DELETE", "/v1/cluster/nodes/{id}", admins, s.remove)
	s.route("POST", "/v1/cluster/scale", admins, s.scale)
	s.route("POST", "/v1/cluster/scrub", admins, s.scrub)
	s.route("POST", "/v1/cluster/repair", admins, s.repair)
	s.route("GET", "/healthz", anyone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route("GET", "/readyz", anyone, s.ready)
	s.route("GET", "/v1/openapi.json", anyone, s.openAPI)
	s.operateRoutes()
	s.debugRoutes()
	s.transparencyRoutes()
	s.sessionRoutes()
	s.dataRoutes()
	s.functionRoutes()
	s.mux.Handle("GET /metrics", s.guard(readers, promhttp.Handler().ServeHTTP))
	s.table = append(s.table, routeEntry{"GET", "/metrics", readers})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint: "+r.URL.Path)
	})
}

// ServeHTTP bounds every request's work and body and logs failures.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.entry.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if r.Body != nil {
		limit := s.cfg.MaxBodyBytes
		if r.Method == http.MethodPost && r.URL.Path == "/v1/functions" {
			limit = maxDeployBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// Serve serves on ln until Shutdown (HTTPS if the config has TLS).
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS.ServerConfig(false, nil))
	}
	err := s.hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// OriginConfig selects the request origin an execution record keeps.
type OriginConfig struct {
	// ClientAddr records the client's address (host:port of the
	// connection to this gateway).
	ClientAddr bool
	// Headers records these request headers, in this order, when present
	// (at most execrecord.MaxHeaders; values cut at
	// execrecord.MaxHeaderValue bytes).
	Headers []string
}
