package kme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"qledger/qkd"
)

// PathPrefix is where the API lives; mount Server at it without stripping.
const PathPrefix = "/api/v1/keys/"

// Config configures a Server. Sizes are in bits.
type Config struct {
	// KMEID is reported as source_KME_ID and target_KME_ID: this KME
	// serves both ends of its links.
	KMEID string
	// KeySize is the default key size (multiple of 8).
	KeySize int
	// MinKeySize and MaxKeySize bound the size a request may ask for.
	MinKeySize, MaxKeySize int
	// MaxKeysPerRequest bounds number in enc_keys and the key IDs in
	// dec_keys.
	MaxKeysPerRequest int
	// MaxKeyCount bounds, per pool, both the stored key material and the
	// keys delivered to the master that still wait for the slave, in keys
	// of KeySize.
	MaxKeyCount int
	// PendingTTL erases keys the slave has not fetched after this long
	// (0 keeps them until fetched).
	PendingTTL time.Duration
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// CallerSAE names the SAE making a request; the default,
	// SAEFromCertificate, reads the verified client certificate. Tests and
	// deployments with another identity scheme can replace it.
	CallerSAE func(*http.Request) (string, error)
	// Logger receives request logs (never key material); nil uses
	// hclog.Default().Named("kme").
	Logger hclog.Logger

	now func() time.Time
}

// DefaultConfig returns 256-bit keys, sizes 64..8192 bits, 128 keys per
// request, pools of 100,000 keys, pending keys kept for 10 minutes.
func DefaultConfig() Config {
	return Config{KMEID: "qledger-kme", KeySize: 256, MinKeySize: 64, MaxKeySize: 8192,
		MaxKeysPerRequest: 128, MaxKeyCount: 100000, PendingTTL: 10 * time.Minute, MaxBodyBytes: 1 << 20}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.KMEID == "":
		return fmt.Errorf("%w: empty KME ID", ErrInvalidConfig)
	case c.MinKeySize < 8 || c.MinKeySize%8 != 0 || c.MaxKeySize%8 != 0 || c.MaxKeySize < c.MinKeySize:
		return fmt.Errorf("%w: key size bounds %d..%d", ErrInvalidConfig, c.MinKeySize, c.MaxKeySize)
	case c.KeySize%8 != 0 || c.KeySize < c.MinKeySize || c.KeySize > c.MaxKeySize:
		return fmt.Errorf("%w: key size %d", ErrInvalidConfig, c.KeySize)
	case c.MaxKeysPerRequest < 1 || c.MaxKeyCount < 1:
		return fmt.Errorf("%w: max keys per request %d, max key count %d", ErrInvalidConfig, c.MaxKeysPerRequest, c.MaxKeyCount)
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("%w: max body %d bytes", ErrInvalidConfig, c.MaxBodyBytes)
	case c.PendingTTL < 0:
		return fmt.Errorf("%w: pending TTL %v", ErrInvalidConfig, c.PendingTTL)
	}
	return nil
}

// Server is the KME: an http.Handler for the ETSI GS QKD 014 API. Safe for
// concurrent use.
type Server struct {
	cfg   Config
	log   hclog.Logger
	mu    sync.RWMutex
	pools map[[2]string]*Pool
}

// NewServer validates cfg and returns a KME with no pools.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CallerSAE == nil {
		cfg.CallerSAE = SAEFromCertificate
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.Default().Named("kme")
	}
	return &Server{cfg: cfg, log: log, pools: make(map[[2]string]*Pool)}, nil
}

// AddPair creates the pool for keys that master takes with enc_keys and
// slave fetches with dec_keys.
func (s *Server) AddPair(master, slave string) (*Pool, error) {
	for _, id := range []string{master, slave} {
		if err := ValidateSAEID(id); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{master, slave}
	if _, ok := s.pools[k]; ok {
		return nil, fmt.Errorf("%w: %s -> %s", ErrPoolExists, master, slave)
	}
	p := newPool(master, slave, s.cfg)
	s.pools[k] = p
	return p, nil
}

// Pool returns the pool of an ordered pair.
func (s *Server) Pool(master, slave string) (*Pool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.pools[[2]string{master, slave}]
	return p, ok
}

// Refill keeps the pool of (master, slave) between low and high keys from
// link until ctx ends, checking every interval. It returns ctx's error, or
// the error of a fill that aborted maxAborts blocks in a row.
func (s *Server) Refill(ctx context.Context, master, slave string, link *qkd.Link, low, high int, interval time.Duration) error {
	p, ok := s.Pool(master, slave)
	if !ok {
		return fmt.Errorf("%w: %s -> %s", ErrUnknownPair, master, slave)
	}
	const maxAborts = 8
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if p.Stored() < low {
			if err := p.Fill(ctx, link, high, maxAborts); err != nil {
				s.log.Error("key pool refill failed", "master", master, "slave", slave, "error", err)
				return err
			}
			s.log.Debug("key pool refilled", "master", master, "slave", slave, "stored", p.Stored())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

type route int

const (
	routeStatus route = iota
	routeEnc
	routeDec
)

// routes maps each operation to the methods it answers, compared exactly.
var routes = map[string]struct {
	r       route
	methods []string
}{
	"status":   {routeStatus, []string{http.MethodGet}},
	"enc_keys": {routeEnc, []string{http.MethodGet, http.MethodPost}},
	"dec_keys": {routeDec, []string{http.MethodGet, http.MethodPost}},
}

// ServeHTTP answers the three ETSI GS QKD 014 endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, err := s.cfg.CallerSAE(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "client certificate required", detail("error", err.Error()))
		return
	}
	if err := ValidateSAEID(caller); err != nil {
		writeError(w, http.StatusUnauthorized, "client certificate does not name a valid SAE", detail("error", err.Error()))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	id, op, ok2 := strings.Cut(rest, "/")
	rt, ok3 := routes[op]
	if !ok || !ok2 || !ok3 {
		writeError(w, http.StatusNotFound, "no such endpoint", detail("path", r.URL.Path))
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method not allowed", detail("method", r.Method))
		return
	}
	if err := ValidateSAEID(id); err != nil {
		writeError(w, http.StatusBadRequest, "invalid SAE ID in path", detail("SAE_ID", err.Error()))
		return
	}
	switch rt.r {
	case routeStatus:
		s.status(w, caller, id)
	case routeEnc:
		s.encKeys(w, r, caller, id)
	case routeDec:
		s.decKeys(w, r, caller, id)
	}
}

func (s *Server) status(w http.ResponseWriter, caller, slave string) {
	st, ok := s.statusOf(caller, slave)
	if !ok {
		writeError(w, http.StatusBadRequest, "SAE pair not registered", detail("SAE_ID", slave))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// statusOf describes the pool that caller shares with other, either way.
func (s *Server) statusOf(caller, other string) (Status, bool) {
	p, ok := s.Pool(caller, other)
	if !ok {
		p, ok = s.Pool(other, caller)
	}
	if !ok {
		return Status{}, false
	}
	return Status{
		SourceKMEID: s.cfg.KMEID, TargetKMEID: s.cfg.KMEID, MasterSAEID: p.master, SlaveSAEID: p.slave,
		KeySize: s.cfg.KeySize, StoredKeyCount: p.Stored(), MaxKeyCount: s.cfg.MaxKeyCount,
		MaxKeyPerRequest: s.cfg.MaxKeysPerRequest, MaxKeySize: s.cfg.MaxKeySize, MinKeySize: s.cfg.MinKeySize,
		MaxSAEIDCount: 0,
	}, true
}

func (s *Server) encKeys(w http.ResponseWriter, r *http.Request, master, slave string) {
	req, status, msg, details := s.parseKeyRequest(r)
	if status != 0 {
		writeError(w, status, msg, details...)
		return
	}
	number, size := s.cfg.keysDefault(req)
	if bad := s.checkKeyRequest(req, number, size); bad != nil {
		writeError(w, http.StatusBadRequest, "requested parameters do not adhere to KME configuration", bad...)
		return
	}
	p, ok := s.Pool(master, slave)
	if !ok {
		writeError(w, http.StatusBadRequest, "SAE pair not registered", detail("slave_SAE_ID", slave))
		return
	}
	keys, err := p.take(number, size)
	if err != nil {
		status := http.StatusServiceUnavailable
		if !errors.Is(err, ErrInsufficient) {
			status = http.StatusInternalServerError
		}
		writeError(w, status, "keys are not available", detail("error", err.Error()))
		return
	}
	s.log.Debug("keys delivered to master", "master", master, "slave", slave, "number", number, "size", size)
	writeJSON(w, http.StatusOK, KeyContainer{Keys: keys})
}

// keysDefault applies the defaults of an enc_keys request.
func (c Config) keysDefault(req KeyRequest) (number, size int) {
	number, size = 1, c.KeySize
	if req.Number != nil {
		number = *req.Number
	}
	if req.Size != nil {
		size = *req.Size
	}
	return number, size
}

func (s *Server) parseKeyRequest(r *http.Request) (KeyRequest, int, string, []map[string]any) {
	var req KeyRequest
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		for _, name := range []string{"number", "size"} {
			vs, ok := q[name]
			if !ok {
				continue
			}
			if len(vs) != 1 {
				return req, http.StatusBadRequest, "repeated query parameter", []map[string]any{detail(name, "given more than once")}
			}
			v, err := strconv.Atoi(vs[0])
			if err != nil {
				return req, http.StatusBadRequest, "query parameter is not an integer", []map[string]any{detail(name, vs[0])}
			}
			if name == "number" {
				req.Number = &v
			} else {
				req.Size = &v
			}
		}
		return req, 0, "", nil
	}
	if msg, d := decodeBody(r, s.cfg.MaxBodyBytes, &req, true); msg != "" {
		return req, http.StatusBadRequest, msg, []map[string]any{d}
	}
	return req, 0, "", nil
}

func (s *Server) checkKeyRequest(req KeyRequest, number, size int) []map[string]any {
	var bad []map[string]any
	if number < 1 || number > s.cfg.MaxKeysPerRequest {
		bad = append(bad, detail("number", fmt.Sprintf("%d not in [1, %d]", number, s.cfg.MaxKeysPerRequest)))
	}
	if size%8 != 0 || size < s.cfg.MinKeySize || size > s.cfg.MaxKeySize {
		bad = append(bad, detail("size", fmt.Sprintf("%d is not a multiple of 8 in [%d, %d]", size, s.cfg.MinKeySize, s.cfg.MaxKeySize)))
	}
	if len(req.AdditionalSlaveSAEIDs) > 0 {
		bad = append(bad, detail("additional_slave_SAE_IDs", "not supported (max_SAE_ID_count is 0)"))
	}
	if len(req.ExtensionMandatory) > 0 {
		bad = append(bad, detail("extension_mandatory", "unsupported mandatory extension"))
	}
	return bad
}

func (s *Server) decKeys(w http.ResponseWriter, r *http.Request, slave, master string) {
	var raw []string
	if r.Method == http.MethodGet {
		raw = r.URL.Query()["key_ID"]
	} else {
		var body KeyIDs
		if msg, d := decodeBody(r, s.cfg.MaxBodyBytes, &body, false); msg != "" {
			writeError(w, http.StatusBadRequest, msg, d)
			return
		}
		for _, k := range body.KeyIDs {
			raw = append(raw, k.KeyID)
		}
	}
	if len(raw) == 0 || len(raw) > s.cfg.MaxKeysPerRequest {
		writeError(w, http.StatusBadRequest, "invalid number of key IDs",
			detail("key_IDs", fmt.Sprintf("%d not in [1, %d]", len(raw), s.cfg.MaxKeysPerRequest)))
		return
	}
	ids := make([]uuid.UUID, len(raw))
	seen := make(map[uuid.UUID]bool, len(raw))
	for i, v := range raw {
		id, err := ParseKeyID(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid key ID", detail("key_ID", v))
			return
		}
		if seen[id] {
			writeError(w, http.StatusBadRequest, "duplicate key ID", detail("key_ID", v))
			return
		}
		seen[id], ids[i] = true, id
	}
	p, ok := s.Pool(master, slave)
	if !ok {
		writeError(w, http.StatusBadRequest, "SAE pair not registered", detail("master_SAE_ID", master))
		return
	}
	keys, err := p.claim(ids)
	if err != nil {
		var nf *notFoundError
		if errors.As(err, &nf) {
			writeError(w, http.StatusBadRequest, "keys not found", detail("key_IDs", strings.Join(nf.ids, ",")))
			return
		}
		writeError(w, http.StatusInternalServerError, "key lookup failed", detail("error", err.Error()))
		return
	}
	s.log.Debug("keys delivered to slave", "master", master, "slave", slave, "number", len(keys))
	writeJSON(w, http.StatusOK, KeyContainer{Keys: keys})
}

// decodeBody reads one JSON object; an empty body is allowed if emptyOK.
func decodeBody(r *http.Request, limit int64, v any, emptyOK bool) (string, map[string]any) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return "cannot read request body", detail("error", err.Error())
	}
	if int64(len(body)) > limit {
		return "request body too large", detail("limit", strconv.FormatInt(limit, 10))
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return "", nil
		}
		return "empty request body", detail("body", "required")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return "malformed JSON body", detail("error", err.Error())
	}
	if dec.More() {
		return "malformed JSON body", detail("error", "trailing data")
	}
	return "", nil
}

func detail(k, v string) map[string]any { return map[string]any{k: v} }

func writeError(w http.ResponseWriter, status int, msg string, details ...map[string]any) {
	writeJSON(w, status, &Error{Message: msg, Details: details})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// EncKeys takes keys for master from the (master, slave) pool in process,
// with the same checks and effects as the enc_keys endpoint. Errors wrap
// ErrBadRequest (parameters), ErrUnknownPair, or ErrUnavailable and
// ErrInsufficient (not enough key).
func (s *Server) EncKeys(master, slave string, number, size int) ([]Key, error) {
	return s.takeKeys(master, slave, KeyRequest{Number: &number, Size: &size})
}

// takeKeys is EncKeys with an enc_keys request body.
func (s *Server) takeKeys(master, slave string, req KeyRequest) ([]Key, error) {
	if err := ValidateSAEID(master); err != nil {
		return nil, err
	}
	if err := ValidateSAEID(slave); err != nil {
		return nil, err
	}
	number, size := s.cfg.keysDefault(req)
	if bad := s.checkKeyRequest(req, number, size); bad != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, bad)
	}
	p, ok := s.Pool(master, slave)
	if !ok {
		return nil, fmt.Errorf("%w: %s -> %s", ErrUnknownPair, master, slave)
	}
	keys, err := p.take(number, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return keys, nil
}

// DecKeys hands slave the keys with the given IDs from the (master, slave)
// pool in process and erases them, with the same checks and effects as the
// dec_keys endpoint (Local offers it with the Client's signature). Errors
// wrap ErrBadRequest (malformed or duplicate IDs), ErrUnknownPair or
// ErrKeyNotFound.
func (s *Server) DecKeys(master, slave string, ids []string) ([]Key, error) {
	if err := ValidateSAEID(master); err != nil {
		return nil, err
	}
	if err := ValidateSAEID(slave); err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > s.cfg.MaxKeysPerRequest {
		return nil, fmt.Errorf("%w: %d key IDs", ErrBadRequest, len(ids))
	}
	parsed := make([]uuid.UUID, len(ids))
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, v := range ids {
		id, err := ParseKeyID(v)
		if err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: duplicate key ID %s", ErrBadRequest, v)
		}
		seen[id], parsed[i] = true, id
	}
	p, ok := s.Pool(master, slave)
	if !ok {
		return nil, fmt.Errorf("%w: %s -> %s", ErrUnknownPair, master, slave)
	}
	return p.claim(parsed)
}
