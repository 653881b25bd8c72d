package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
	"qledger/execute"
)

// maxDeployBody bounds POST /v1/functions: a base64 module up to
// chain.MaxDeployPayloadSize.
const maxDeployBody = chain.MaxDeployPayloadSize*4/3 + 64<<10

func (s *Server) functionRoutes() {
	s.route("POST", "/v1/functions", admins, s.deploy)
	s.route("GET", "/v1/functions", readers, s.listFunctions)
	s.route("POST", "/v1/functions/{name}/invoke", writers, s.invoke)
}

// deploy commits the function to every group, so any group can run it.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	var req client.DeployRequest
	if err := decodeStrict(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	spec := execute.DefaultSpec(req.Name, req.Version, req.Code)
	if req.MemoryPages > 0 {
		spec.MemoryPages = req.MemoryPages
	}
	if req.TimeoutMillis > 0 {
		spec.Timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
	}
	if req.MaxOutputBytes > 0 {
		spec.MaxOutputBytes = req.MaxOutputBytes
	}
	d := execute.Deployment{Spec: spec, Code: req.Code}
	if err := s.c.CheckDeployment(r.Context(), d); err != nil {
		s.fail(w, r, err)
		return
	}
	payload, err := d.MarshalBinary()
	if err != nil {
		s.fail(w, r, badRequest("%v", err))
		return
	}
	out := client.DeployResponse{Name: spec.Name, Version: spec.Version, CodeHash: spec.CodeHashString()}
	for g := 0; g < s.c.Groups(); g++ {
		rec, err := s.c.Submit(r.Context(), chain.Tx{Kind: chain.TxDeploy, Group: uint32(g), Submitter: submitter(r), Payload: payload})
		if err != nil {
			s.fail(w, r, fmt.Errorf("deploy to group %d: %w", g, err))
			return
		}
		out.Receipts = append(out.Receipts, client.Receipt{ID: rec.ID.String(), Group: rec.Group, Height: rec.Height, Index: rec.Index})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	fns, err := s.c.Functions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := client.FunctionList{Functions: []client.FunctionInfo{}}
	for _, f := range fns {
		out.Functions = append(out.Functions, client.FunctionInfo{Name: f.Spec.Name, Version: f.Spec.Version, CodeHash: f.Spec.CodeHashString(),
			MemoryPages: f.Spec.MemoryPages, TimeoutMillis: f.Spec.Timeout.Milliseconds(), MaxOutputBytes: f.Spec.MaxOutputBytes, Height: f.Height})
	}
	writeJSON(w, http.StatusOK, out)
}

// invoke runs a function under the XOR-stake election. Without a
// quantum-keyed session the election key comes from this gateway's own
// secret (see Server.execKey): unpredictable to the candidates, which is
// what the rule needs, but not tied to a QKD key.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	var req client.InvokeRequest
	if err := decodeStrict(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.runInvoke(r, r.PathValue("name"), req, s.execKey[:], s.execKeyID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) runInvoke(r *http.Request, name string, req client.InvokeRequest, sessionKey []byte, keyID string) (client.InvokeResponse, error) {
	if name == "" || len(name) > execute.MaxNameLen {
		return client.InvokeResponse{}, badRequest("function name must be 1..%d bytes", execute.MaxNameLen)
	}
	done, ok := s.lim.startInvoke(submitter(r))
	if !ok {
		return client.InvokeResponse{}, fmt.Errorf("%w (%d)", errTooManyInvocations, s.cfg.MaxInvocationsPerCaller)
	}
	defer done()
	n := s.c.Groups()
	var ir cluster.InvokeRequest
	if _, err := rand.Read(ir.RequestID[:]); err != nil {
		return client.InvokeResponse{}, err
	}
	ir.Group = int(ir.RequestID[0]) % n
	if req.Group != nil {
		if *req.Group < 0 || *req.Group >= n {
			return client.InvokeResponse{}, badRequest("group %d does not exist", *req.Group)
		}
		ir.Group = *req.Group
	}
	key, err := election.DeriveKey(sessionKey, ir.RequestID[:])
	if err != nil {
		return client.InvokeResponse{}, err
	}
	ir.Function, ir.Input, ir.ElectionKey, ir.KeyID, ir.Caller = name, req.Input, key, keyID, submitter(r)
	res, err := s.c.Invoke(r.Context(), ir)
	if err != nil && res.Receipt.Height == 0 {
		return client.InvokeResponse{}, err
	}
	x := res.Record
	out := client.InvokeResponse{
		RequestID: hex.EncodeToString(ir.RequestID[:]), Group: ir.Group, Output: x.Response, Outcome: x.Outcome.String(), ExitCode: x.ExitCode,
		ResultHash: x.ResultHash.String(), Executor: x.Executor, Verifier: x.Verifier, TieBreaker: x.TieBreaker,
		Verified: x.Verified, Agreed: x.Agreed, Conflict: x.Conflict, Election: x.Election,
		Receipt: client.Receipt{ID: res.Receipt.ID.String(), Group: res.Receipt.Group, Height: res.Receipt.Height, Index: res.Receipt.Index},
	}
	if !x.Agreed {
		out.Outcome = "conflict"
	}
	return out, err
}
