package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
	"qledger/execrecord"
	"qledger/fsm"
	"qledger/function"
)

// maxDeployBody bounds POST /v1/functions: a base64 module up to
// chain.MaxDeployPayloadSize.
const maxDeployBody = chain.MaxDeployPayloadSize*4/3 + 64<<10

func (s *Server) functionRoutes() {
	s.route("POST", "/v1/functions", admins, s.deploy)
	s.route("GET", "/v1/functions", readers, s.listFunctions)
	s.route("GET", "/v1/functions/{name}", readers, s.getFunction)
	s.route("POST", "/v1/functions/{name}/invoke", writers, s.invoke)
	s.route("GET", "/v1/invocations/{id}", readers, s.getInvocation)
}

// deploy commits the function to every group, so any group can run it.
//
// The body is JSON (client.DeployRequest, the module in base64) or
// multipart/form-data with the module as the file part "code" and the
// other fields as form values of the same names.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	var req client.DeployRequest
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		req, err = decodeDeployForm(r)
	} else {
		err = decodeStrict(r.Body, &req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	spec := function.DefaultSpec(req.Name, req.Version, req.Code)
	if req.MemoryPages > 0 {
		spec.MemoryPages = req.MemoryPages
	}
	if req.TimeoutMillis > 0 {
		spec.Timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
	}
	if req.MaxOutputBytes > 0 {
		spec.MaxOutputBytes = req.MaxOutputBytes
	}
	if spec.Unverified, err = function.ParseUnverifiedPolicy(req.Unverified); err != nil {
		s.fail(w, r, badRequest("%v", err))
		return
	}
	d := function.Deployment{Spec: spec, Code: req.Code}
	if err := s.fns.CheckDeployment(r.Context(), d); err != nil {
		s.fail(w, r, err)
		return
	}
	payload, err := d.MarshalBinary()
	if err != nil {
		s.fail(w, r, badRequest("%v", err))
		return
	}
	out := client.DeployResponse{Name: spec.Name, Version: spec.Version, CodeHash: spec.CodeHashString()}
	for g := 0; g < s.ledger.Groups(); g++ {
		rec, err := s.ledger.Submit(r.Context(), chain.Tx{Kind: chain.TxDeploy, Group: uint32(g), Submitter: submitter(r), Payload: payload})
		if err != nil {
			s.fail(w, r, fmt.Errorf("deploy to group %d: %w", g, err))
			return
		}
		out.Receipts = append(out.Receipts, client.Receipt{ID: rec.ID.String(), Group: rec.Group, Height: rec.Height, Index: rec.Index})
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeDeployForm reads a multipart deploy: the file part "code" and the
// fields name, version, memory_pages, timeout_ms, max_output_bytes and
// unverified.
func decodeDeployForm(r *http.Request) (client.DeployRequest, error) {
	var req client.DeployRequest
	mr, err := r.MultipartReader()
	if err != nil {
		return req, badRequest("multipart body: %v", err)
	}
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return req, err
			}
			return req, badRequest("multipart body: %v", err)
		}
		name := part.FormName()
		if seen[name] {
			return req, badRequest("multipart field %q given twice", name)
		}
		seen[name] = true
		limit := int64(256)
		if name == "code" {
			limit = chain.MaxDeployPayloadSize
		}
		b, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return req, err
			}
			return req, badRequest("multipart field %q: %v", name, err)
		}
		if int64(len(b)) > limit {
			return req, fmt.Errorf("%w: multipart field %q over %d bytes", cluster.ErrTooLarge, name, limit)
		}
		v := string(b)
		num := func() (uint64, error) {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, badRequest("%s must be a non-negative integer, not %q", name, v)
			}
			return n, nil
		}
		switch name {
		case "code":
			req.Code = b
		case "name":
			req.Name = v
		case "version":
			req.Version = v
		case "memory_pages":
			n, err := num()
			if err != nil {
				return req, err
			}
			req.MemoryPages = uint32(n)
		case "timeout_ms":
			n, err := num()
			if err != nil {
				return req, err
			}
			req.TimeoutMillis = int64(n)
		case "max_output_bytes":
			n, err := num()
			if err != nil {
				return req, err
			}
			req.MaxOutputBytes = uint32(n)
		case "unverified":
			req.Unverified = v
		default:
			return req, badRequest("unknown multipart field %q (want code, name, version, memory_pages, timeout_ms, max_output_bytes, unverified)", name)
		}
	}
	if len(req.Code) == 0 {
		return req, badRequest("multipart deploy without a \"code\" file part")
	}
	return req, nil
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	fns, err := s.fns.Functions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := client.FunctionList{Functions: []client.FunctionInfo{}}
	for _, f := range fns {
		out.Functions = append(out.Functions, functionWire(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func functionWire(f fsm.FunctionMeta) client.FunctionInfo {
	return client.FunctionInfo{Name: f.Spec.Name, Version: f.Spec.Version, CodeHash: f.Spec.CodeHashString(),
		MemoryPages: f.Spec.MemoryPages, TimeoutMillis: f.Spec.Timeout.Milliseconds(), MaxOutputBytes: f.Spec.MaxOutputBytes,
		Unverified: f.Spec.Unverified.String(), Height: f.Height}
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) {
	fns, err := s.fns.Functions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, f := range fns {
		if f.Spec.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, functionWire(f))
			return
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no function %q is deployed", r.PathValue("name")))
}

// invoke runs a function under the XOR-stake election. Without a
// quantum-keyed session the election key comes from this gateway's own
// secret (see Server.execKey): unpredictable to the candidates, which is
// what the rule needs, but not tied to a QKD key.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	var req client.InvokeRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	inv, err := s.prepareInvoke(r.PathValue("name"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	inv.origin = s.origin(r)
	if a := r.URL.Query().Get("async"); a == "1" || a == "true" {
		// Refuse an unknown function now rather than in the background.
		if fns, err := s.fns.Functions(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		} else if !slices.ContainsFunc(fns, func(f fsm.FunctionMeta) bool { return f.Spec.Name == inv.name }) {
			writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no function %q is deployed", inv.name))
			return
		}
		st, err := s.async.start(s, submitter(r), inv)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Location", "/v1/invocations/"+st.ID)
		writeJSON(w, http.StatusAccepted, st)
		return
	}
	res, err := s.runInvoke(r.Context(), submitter(r), inv, s.execKey[:], s.execKeyID)
	if err != nil {
		s.failInvoke(w, r, res, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// invocation is an invoke request checked and placed: its request ID,
// group and route.
type invocation struct {
	name   string
	req    client.InvokeRequest
	rid    [32]byte
	group  int
	route  string
	origin execrecord.Origin
}

// prepareInvoke validates a request, takes or draws its request ID and
// picks its group: the one asked for, else the group with the fewest
// invocations in flight on this gateway (ties broken by the request ID).
func (s *Server) prepareInvoke(name string, req client.InvokeRequest) (invocation, error) {
	inv := invocation{name: name, req: req}
	if name == "" || len(name) > function.MaxNameLen {
		return inv, badRequest("function name must be 1..%d bytes", function.MaxNameLen)
	}
	if req.RequestID != "" {
		b, err := hex.DecodeString(req.RequestID)
		if err != nil || len(b) != 32 {
			return inv, badRequest("request_id must be 64 hex digits")
		}
		copy(inv.rid[:], b)
	} else if _, err := rand.Read(inv.rid[:]); err != nil {
		return inv, err
	}
	n := s.ledger.Groups()
	if req.Group != nil {
		if *req.Group < 0 || *req.Group >= n {
			return inv, badRequest("group %d does not exist", *req.Group)
		}
		inv.group, inv.route = *req.Group, "requested"
	} else {
		inv.group, inv.route = s.load.pick(n, inv.rid), "least-load"
	}
	return inv, nil
}

// runInvoke runs a prepared invocation for caller and converts the
// committed record to its wire form. With an error, the response is the
// zero value unless the record was committed (a disagreement).
func (s *Server) runInvoke(ctx context.Context, caller string, inv invocation, sessionKey []byte, keyID string) (client.InvokeResponse, error) {
	done, ok := s.lim.startInvoke(caller)
	if !ok {
		return client.InvokeResponse{}, fmt.Errorf("%w (%d)", errTooManyInvocations, s.cfg.MaxInvocationsPerCaller)
	}
	defer done()
	key, err := election.DeriveKey(sessionKey, inv.rid[:])
	if err != nil {
		return client.InvokeResponse{}, err
	}
	ir := cluster.InvokeRequest{Group: inv.group, Function: inv.name, Input: inv.req.Input, RequestID: inv.rid, ElectionKey: key, KeyID: keyID, Caller: caller, Route: inv.route, Origin: inv.origin}
	s.load.add(inv.group, 1)
	res, err := s.fns.Invoke(ctx, ir)
	s.load.add(inv.group, -1)
	if err != nil && res.Receipt.Height == 0 {
		return client.InvokeResponse{}, err
	}
	return invokeWire(res, inv.group), err
}

func invokeWire(res cluster.InvokeResult, group int) client.InvokeResponse {
	x := res.Record
	out := client.InvokeResponse{
		RequestID: hex.EncodeToString(x.RequestID[:]), Group: group, Output: x.Response, Outcome: x.Outcome.String(), ExitCode: x.ExitCode,
		ResultHash: x.ResultHash.String(), Executor: x.Executor, Verifier: x.Verifier, TieBreaker: x.TieBreaker,
		Verified: x.Verified, Unverified: x.Agreed && !x.Verified, Agreed: x.Agreed, Conflict: x.Conflict, Election: x.Election,
		Receipt: client.Receipt{ID: res.Receipt.ID.String(), Group: res.Receipt.Group, Height: res.Receipt.Height, Index: res.Receipt.Index},
		Route:   x.Route, Caller: x.Caller, Replayed: res.Receipt.Duplicate, DurationMicros: x.Micros,
	}
	if !x.Agreed {
		out.Outcome = "conflict"
	}
	return out
}

// groupLoad counts this gateway's invocations in flight per group.
type groupLoad struct {
	mu       sync.Mutex
	inflight map[int]int
}

func (l *groupLoad) add(g, d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight == nil {
		l.inflight = map[int]int{}
	}
	l.inflight[g] += d
}

func (l *groupLoad) pick(groups int, rid [32]byte) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var least []int
	for g := 0; g < groups; g++ {
		switch {
		case len(least) == 0 || l.inflight[g] < l.inflight[least[0]]:
			least = []int{g}
		case l.inflight[g] == l.inflight[least[0]]:
			least = append(least, g)
		}
	}
	return least[int(rid[0])%len(least)]
}

// origin is what of r's origin the gateway is configured to record.
func (s *Server) origin(r *http.Request) execrecord.Origin {
	var o execrecord.Origin
	if s.cfg.Origin.ClientAddr {
		o.ClientAddr = r.RemoteAddr
	}
	for _, name := range s.cfg.Origin.Headers {
		if len(o.Headers) == execrecord.MaxHeaders {
			break
		}
		if v := r.Header.Values(name); len(v) > 0 {
			val := strings.Join(v, ", ")
			if len(val) > execrecord.MaxHeaderValue {
				val = val[:execrecord.MaxHeaderValue]
			}
			o.Headers = append(o.Headers, execrecord.Header{Name: http.CanonicalHeaderKey(name), Value: val})
		}
	}
	return o
}
