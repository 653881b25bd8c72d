package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"qledger/chain"
	"qledger/election"
	"qledger/execrecord"
	"qledger/execute"
	"qledger/fsm"
	"qledger/function"
)

// InvokeRequest asks a group to run a deployed function under the
// XOR-stake election. The gateway derives ElectionKey from the client's
// session key and the request ID (election.DeriveKey); the session key
// itself never leaves the gateway.
type InvokeRequest struct {
	Group       int                 `json:"group"`
	Function    string              `json:"function"`
	Input       []byte              `json:"input"`
	RequestID   [32]byte            `json:"request_id"`
	ElectionKey [election.Size]byte `json:"election_key"`
	KeyID       string              `json:"key_id"`
	// Caller is the authenticated caller ("role:name"), recorded as the
	// execution record's submitter; "" without TLS.
	Caller string `json:"caller,omitempty"`
	// Route says how the gateway chose the group ("requested",
	// "least-load"); it is written in the record.
	Route string `json:"route,omitempty"`
	// Origin is what of the request's origin the gateway records (client
	// address, selected headers); written in the record.
	Origin execrecord.Origin `json:"origin,omitzero"`
	Hops   int               `json:"hops"`
}

// InvokeKey is the idempotency key of the execution record of a request:
// one record per (caller, request ID), however often it is retried.
func InvokeKey(requestID [32]byte) string { return fmt.Sprintf("invoke/%x", requestID) }

// InvokeResult answers an invocation.
type InvokeResult struct {
	Record  execrecord.Record `json:"record"`
	Receipt Receipt           `json:"receipt"`
}

// Errors of the execution path.
var (
	ErrNoCandidates = errors.New("cluster: no node of the group took part in the election")
	ErrNoAgreement  = errors.New("cluster: executions disagree and no majority was found")
)

type commitReq struct {
	RequestID [32]byte `json:"request_id"`
}

type commitResp struct {
	NodeID string              `json:"node_id"`
	H      [election.Size]byte `json:"h"`
}

type revealResp struct {
	NodeID string              `json:"node_id"`
	Nonce  [election.Size]byte `json:"nonce"`
}

type execReq struct {
	RequestID [32]byte `json:"request_id"`
	Function  string   `json:"function"`
	CodeHash  [32]byte `json:"code_hash"`
	Input     []byte   `json:"input"`
	// DeployHeight is the block that deployed the function; a replica
	// that has not applied it yet waits for it.
	DeployHeight uint64 `json:"deploy_height"`
}

// execLocal runs a function on this node, loading it from the local chain
// store on first use.
func (n *Node) execLocal(ctx context.Context, req execReq) execrecord.Execution {
	out := execrecord.Execution{NodeID: n.info.ID}
	for wait := time.Now(); ; {
		h, _, err := n.store.Head()
		if err == nil && h.Height >= req.DeployHeight || time.Since(wait) > n.cfg.RPCTimeout/2 || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	meta, err := n.store.FunctionMeta(req.Function)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	if meta.Spec.CodeHash != req.CodeHash {
		out.Err = fmt.Sprintf("function %s here has code %x, asked for %x", req.Function, meta.Spec.CodeHash[:6], req.CodeHash[:6])
		return out
	}
	if err := n.ensureCompiled(ctx, req.Function, meta.Spec.CodeHash); err != nil {
		out.Err = err.Error()
		return out
	}
	res, err := n.rt.Invoke(ctx, meta.Spec, req.RequestID, req.Input)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	if hook := n.execHook.Load(); hook != nil {
		res = (*hook)(res)
	}
	out.Outcome, out.ExitCode, out.Stdout, out.Hash, out.Detail, out.Micros = res.Outcome, res.ExitCode, res.Stdout, res.Hash, res.Detail, res.Duration.Microseconds()
	return out
}

// ensureCompiled compiles the function's deployment named name with code
// hash codeHash into this node's runtime unless it is there already; only
// then is the code read from the store (the deployment transaction is
// decoded once per compilation, not once per invocation).
func (n *Node) ensureCompiled(ctx context.Context, name string, codeHash [32]byte) error {
	if n.rt.Deployed(codeHash) {
		return nil
	}
	meta, code, err := n.store.Function(name)
	if err != nil {
		return err
	}
	if meta.Spec.CodeHash != codeHash {
		return fmt.Errorf("function %s here has code %x, asked for %x", name, meta.Spec.CodeHash[:6], codeHash[:6])
	}
	t0 := time.Now()
	if _, err := n.rt.Deploy(ctx, function.Deployment{Spec: meta.Spec, Code: code}); err != nil {
		return err
	}
	n.metrics.observeCompile(time.Since(t0))
	return nil
}

// SetExecHook replaces every result this node computes for an invocation
// with f's (nil removes it): fault injection for tests of a Byzantine node.
func (n *Node) SetExecHook(f func(execute.Result) execute.Result) {
	if f == nil {
		n.execHook.Store(nil)
		return
	}
	n.execHook.Store(&f)
}

// Invoke runs a function on group req.Group from any node: the request
// travels to the group leader, which holds the election among the live
// members (voters and executors), has the winner execute and the
// runner-up re-execute, asks the third to break a disagreement, and
// commits the execution record.
//
// While the group has no leader the request waits (up to the same grace
// as writes); nothing has run yet, so waiting is safe. Once the leader has
// started the election, an error is final: the request ID is spent;
// except when ctx ends before two executions agreed (one may have
// failed, or a node been left out, only because ctx ended): then nothing
// is recorded and a retry with the same request ID runs it again.
func (n *Node) Invoke(ctx context.Context, req InvokeRequest) (InvokeResult, error) {
	if req.Group < 0 || req.Group >= n.cfg.Groups {
		return InvokeResult{}, fmt.Errorf("%w: group %d", ErrBadRequest, req.Group)
	}
	start := time.Now()
	for {
		res, err := n.invokeOnce(ctx, req)
		if !errors.Is(err, ErrNoLeader) || time.Since(start) > n.noLeaderGrace() || ctx.Err() != nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-n.stop:
			return res, ErrShutdown
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) invokeOnce(ctx context.Context, req InvokeRequest) (InvokeResult, error) {
	if req.Group != n.group || !n.IsLeader() {
		if req.Hops >= maxHops {
			return InvokeResult{}, fmt.Errorf("%w: invocation forwarded too many times", ErrNoLeader)
		}
		req.Hops++
		var targets []string
		if req.Group == n.group {
			ld, ok := n.Leader()
			if !ok {
				return InvokeResult{}, fmt.Errorf("%w: group %d", ErrNoLeader, n.group)
			}
			targets = []string{ld.Addr}
		} else {
			for _, m := range n.dir.inGroup(req.Group) {
				targets = append(targets, m.Addr)
			}
		}
		var last error = fmt.Errorf("%w: group %d", ErrUnknownGroup, req.Group)
		for _, addr := range targets {
			res, err := n.callInvoke(ctx, addr, req)
			if err != nil && isTransport(err) && req.Group == n.group {
				err = fmt.Errorf("%w: leader unreachable: %v", ErrNoLeader, err)
			}
			if err == nil && !res.Record.Agreed {
				return res, disagreement(res) // see serveInvoke
			}
			if err == nil || !isTransport(err) {
				return res, err
			}
			last = err
		}
		if req.Group != n.group && len(targets) > 0 {
			last = groupUnreachable(ErrNoLeader, req.Group, last)
		}
		return InvokeResult{}, last
	}
	return n.lead(ctx, req)
}

// serveInvoke runs an invocation forwarded by another node. A recorded
// disagreement is an outcome: the record travels as the answer (an error
// frame would drop it) and the calling hop restores the error from it.
func (n *Node) serveInvoke(ctx context.Context, req InvokeRequest) (InvokeResult, error) {
	res, err := n.Invoke(ctx, req)
	if errors.Is(err, ErrNoAgreement) && res.Receipt.Height > 0 {
		return res, nil
	}
	return res, err
}

// candidates are the group's configuration members alive in gossip.
func (n *Node) candidates() ([]NodeInfo, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, n.convert(err)
	}
	view := n.gossip.view()
	var out []NodeInfo
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		if id != n.info.ID {
			if m, ok := view[id]; !ok || m.state != stateAlive {
				continue
			}
		}
		out = append(out, NodeInfo{ID: id, Group: n.group, Addr: string(s.Address)})
	}
	return out, nil
}

func (n *Node) lead(ctx context.Context, req InvokeRequest) (res InvokeResult, err error) {
	// A request already recorded is answered from the chain: a retry with
	// the same request ID never runs the function again. A new leader may
	// not have applied everything committed before its term yet; one
	// barrier per term makes its store complete for this check.
	if err := n.caughtUp(); err != nil {
		return InvokeResult{}, err
	}
	if prev, ok, err := n.recordedInvocation(req); err != nil || ok {
		return prev, err
	}
	meta, err := n.store.FunctionMeta(req.Function)
	if err != nil {
		return InvokeResult{}, storeErr(err)
	}
	var tElect, tExec, tCommit time.Duration
	t0 := time.Now()
	n.load.begin()
	defer func() {
		n.load.end(time.Since(t0))
		result := "failed"
		switch {
		case err == nil && res.Record.Outcome == function.OutcomeOK:
			result = "ok"
		case err == nil:
			result = "error"
		case errors.Is(err, ErrNoAgreement):
			result = "conflict"
		}
		n.metrics.observeInvocation(result, res.Record.Conflict != "", tElect, tExec, tCommit, time.Since(t0))
	}()
	n.coldStart(ctx)
	er := execReq{RequestID: req.RequestID, Function: req.Function, CodeHash: meta.Spec.CodeHash, Input: req.Input, DeployHeight: meta.Height}
	tr := &electionTransport{n: n, er: er, timeout: meta.Spec.Timeout, outs: map[string]execrecord.Execution{}, pledged: map[string][election.Size]byte{}}
	rec, v, err := n.holdElection(ctx, req, tr, meta.Spec, func() { tElect = time.Since(t0) })
	if err != nil {
		return InvokeResult{}, err
	}
	if rec.Verifier() == "" && meta.Spec.Unverified == function.UnverifiedRefuse {
		// Nothing is recorded (and nothing ran, unless the verifier
		// dropped out during the runs): the request ID is not spent.
		return InvokeResult{}, fmt.Errorf("%w: only %.12s took part, and function %s refuses unverified results", ErrNoCandidates, rec.Executor(), req.Function)
	}
	xr := execrecord.Record{Version: execrecord.Version, RequestID: req.RequestID, Caller: req.Caller, Route: req.Route, Origin: req.Origin, Function: req.Function, FnVersion: meta.Spec.Version, CodeHash: meta.Spec.CodeHash,
		InputHash: sha256.Sum256(req.Input), Input: req.Input, Timestamp: time.Now().UnixNano(), Election: rec,
		Executor: rec.Executor(), Verifier: rec.Verifier()}
	recordExecutions(rec, v, tr.outs, meta.Spec, &xr)
	tExec = time.Since(t0) - tElect
	if !xr.Verified && ctx.Err() != nil {
		// The caller gave up before two executions agreed, so some may
		// have failed, or their nodes been left out of the election
		// (a reveal-and-run cut off), only because the context ended:
		// recording that as a disagreement, or one result as
		// unverified, would spend the request ID on a failure of no
		// function's making. Nothing is recorded; a retry runs it again.
		return InvokeResult{}, fmt.Errorf("cluster: invocation abandoned by its caller before two executions agreed; nothing recorded: %w", ctx.Err())
	}
	xr.Micros = time.Since(t0).Microseconds()
	tc := time.Now()
	res, err = n.commitRecord(ctx, req, xr)
	tCommit = time.Since(tc)
	return res, err
}

// holdElection runs the election among the group's live members over
// this node's RPC together with the executions (election.RunExecute: the
// two nodes ranked first reveal and run in one exchange) and returns the
// record and the verdict; tr keeps every execution it got. sealed is
// called when the commitments are sealed. A function that refuses
// unverified results has nobody run unless a verifier takes part.
func (n *Node) holdElection(ctx context.Context, req InvokeRequest, tr *electionTransport, spec function.Spec, sealed func()) (election.Record, election.Verdict, error) {
	cands, err := n.candidates()
	if err != nil {
		return election.Record{}, election.Verdict{}, err
	}
	tr.addr = make(map[string]string, len(cands))
	ids := make([]string, len(cands))
	for i, c := range cands {
		tr.addr[c.ID], ids[i] = c.Addr, c.ID
	}
	rec, v, err := election.RunExecute(ctx, election.RunExecuteConfig{
		RunConfig: election.RunConfig{
			RequestID:  req.RequestID[:],
			KeyID:      req.KeyID,
			Key:        req.ElectionKey,
			Candidates: ids,
			Phase:      max(n.cfg.ElectionTimeout, 500*time.Millisecond),
		},
		RunTimeout:      spec.Timeout + n.cfg.RPCTimeout,
		RequireVerifier: spec.Unverified == function.UnverifiedRefuse,
		Sealed:          sealed,
	}, tr, tr)
	switch {
	case errors.Is(err, election.ErrNoCandidates):
		return rec, v, ErrNoCandidates
	case err != nil:
		return rec, v, fmt.Errorf("%w: election: %v", ErrBadRequest, err)
	}
	return rec, v, nil
}

// recordExecutions fills in xr's executions (outs, by node) and result,
// or its conflict, from the verdict v of the election rec. When no
// verifier could run it (every node asked but one failed), the function's
// policy decides: UnverifiedAccept records that one result as agreed but
// not verified, with the failures as its conflict; UnverifiedRefuse
// records no agreement.
func recordExecutions(rec election.Record, v election.Verdict, outs map[string]execrecord.Execution, spec function.Spec, xr *execrecord.Record) {
	for _, x := range v.Executions {
		xr.Executions = append(xr.Executions, outs[x.NodeID])
	}
	if v.TieBroken {
		xr.TieBreaker = rec.TieBreaker()
	}
	if d := execrecord.Decide(xr.Executions, v.TieBroken); !v.Agreed && d.Unverifiable && spec.Unverified == function.UnverifiedAccept {
		v.Agreed, v.Hash, v.Verified = true, d.Hash, false
		xr.Conflict = describeExecs(xr.Executions)
	}
	if v.Agreed {
		for _, x := range xr.Executions {
			if x.Err == "" && x.Hash == v.Hash {
				xr.ResultHash, xr.Outcome, xr.ExitCode, xr.Response = x.Hash, x.Outcome, x.ExitCode, x.Stdout
				break
			}
		}
		xr.Agreed, xr.Verified = true, v.Verified
	}
	if v.TieBroken || !v.Agreed {
		xr.Conflict = describeExecs(xr.Executions)
	}
}

// runOn runs er on node id (at addr), locally if that is this node. An
// answer that claims to have run but carries no outcome, or a hash that is
// not that of its own result, counts as a failure: every replica would
// reject a record holding it (execrecord.Check).
func (n *Node) runOn(ctx context.Context, id, addr string, er execReq, timeout time.Duration) execrecord.Execution {
	return checkedExec(id, n.runOnce(ctx, id, addr, er, timeout))
}

// checkedExec is node id's answer out, or a failure if it claims to have
// run but carries no outcome, or a hash that is not that of its result.
func checkedExec(id string, out execrecord.Execution) execrecord.Execution {
	if out.Err == "" && (!out.Outcome.Valid() || function.ResultHash(out.Outcome, out.ExitCode, out.Stdout) != out.Hash) {
		return execrecord.Execution{NodeID: id, Err: "answered a result whose hash is not that of its output"}
	}
	return out
}

func (n *Node) runOnce(ctx context.Context, id, addr string, er execReq, timeout time.Duration) execrecord.Execution {
	if id == n.info.ID {
		return n.execLocal(ctx, er)
	}
	var out execrecord.Execution
	xctx, cancel := context.WithTimeout(ctx, timeout+n.cfg.RPCTimeout)
	defer cancel()
	if err := n.client.call(xctx, addr, mExecute, er, &out); err != nil {
		return execrecord.Execution{NodeID: id, Err: err.Error()}
	}
	if out.NodeID != id {
		return execrecord.Execution{NodeID: id, Err: "answered as " + out.NodeID}
	}
	return out
}

// commitRecord commits xr as the request's execution record and answers
// with it: ErrNoAgreement with the record if its executions disagreed.
func (n *Node) commitRecord(ctx context.Context, req InvokeRequest, xr execrecord.Record) (InvokeResult, error) {
	payload, err := xr.MarshalBinary()
	if err != nil {
		return InvokeResult{}, fmt.Errorf("cluster: execution record: %w", err)
	}
	receipt, err := n.Submit(ctx, chain.Tx{Kind: chain.TxExec, Group: uint32(n.group), IdempotencyKey: InvokeKey(req.RequestID), Submitter: req.Caller, Payload: payload})
	if errors.Is(err, ErrConflict) {
		// Another run of the same request (a retry through another
		// leader) committed first: its record is the answer.
		if prev, ok, lerr := n.recordedInvocation(req); ok && (lerr == nil || errors.Is(lerr, ErrNoAgreement)) {
			return prev, lerr
		}
	}
	if err != nil {
		return InvokeResult{Record: xr}, err
	}
	res := InvokeResult{Record: xr, Receipt: receipt}
	if !xr.Agreed {
		return res, disagreement(res)
	}
	return res, nil
}

// electionTransport is election.Transport and election.Runner over this
// node's RPC for one invocation; the leader answers for itself from its
// own nonces and runs its share locally. It keeps every execution it
// gets (outs, by node). A candidate's commitment is one of its pledges
// when this node holds one (Node.pledges: no commit round trip), else
// asked for. Calls go under the binary methods (mElectNonce,
// mElectRevealRun), whose answers bring the candidate's next pledge; a
// node of an older release refuses them, and the same call goes again
// under the JSON methods it knows (mElectCommit, mElectReveal, mExecute).
type electionTransport struct {
	n       *Node
	addr    map[string]string
	er      execReq
	timeout time.Duration // the function's time limit

	mu      sync.Mutex
	outs    map[string]execrecord.Execution
	pledged map[string][election.Size]byte // candidates whose commitment is a pledge
}

func (t *electionTransport) Commit(ctx context.Context, id string, requestID []byte) ([election.Size]byte, error) {
	if id == t.n.info.ID {
		return t.n.commitNonce(requestID)
	}
	if h, ok := t.n.pledges.Take(id); ok {
		t.mu.Lock()
		t.pledged[id] = h
		t.mu.Unlock()
		return h, nil
	}
	return t.nonce(ctx, id, nonceReq{Op: nonceCommit, RequestID: [32]byte(requestID)})
}

func (t *electionTransport) Reveal(ctx context.Context, id string, requestID []byte) ([election.Size]byte, error) {
	if id == t.n.info.ID {
		return t.n.revealNonce(requestID)
	}
	req := nonceReq{Op: nonceReveal, RequestID: [32]byte(requestID)}
	if h, ok := t.pledgeOf(id); ok {
		req.Op, req.Pledge = nonceRevealPledge, h
	}
	return t.nonce(ctx, id, req)
}

// pledgeOf is the pledge that is node id's commitment in this election.
func (t *electionTransport) pledgeOf(id string) ([election.Size]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.pledged[id]
	return h, ok
}

// nonce sends req to node id through mElectNonce.
func (t *electionTransport) nonce(ctx context.Context, id string, req nonceReq) ([election.Size]byte, error) {
	resp, err := t.n.client.callRaw(ctx, t.addr[id], mElectNonce, req.marshal())
	if refusedMethod(err) {
		if req.Op == nonceRevealPledge {
			// It pledged, then restarted as an older release.
			t.n.pledges.Forget(id)
			return [election.Size]byte{}, err
		}
		return t.legacyNonce(ctx, id, req.Op, req.RequestID[:])
	}
	var r nonceResp
	if err == nil {
		err = r.unmarshal(resp)
	}
	if err == nil && r.NodeID != id {
		err = fmt.Errorf("%w: %s answered for %s", ErrBadRequest, r.NodeID, id)
	}
	t.answered(id, req.Op == nonceRevealPledge, r.Next, err)
	return r.Value, err
}

// answered keeps the next pledge node id handed over; if it no longer
// holds a pledge it was asked to reveal (it restarted), none of its
// pledges is used again.
func (t *electionTransport) answered(id string, byPledge bool, next nextPledge, err error) {
	if byPledge && errors.Is(err, ErrNotFound) {
		t.n.pledges.Forget(id)
	}
	if err == nil && next.Present {
		t.n.pledges.Add(id, next.H)
	}
}

// legacyNonce is nonce through the JSON methods of older releases.
func (t *electionTransport) legacyNonce(ctx context.Context, id string, op uint8, requestID []byte) ([election.Size]byte, error) {
	var r struct {
		NodeID string              `json:"node_id"`
		H      [election.Size]byte `json:"h"`
		Nonce  [election.Size]byte `json:"nonce"`
	}
	m, val := mElectCommit, &r.H
	if op == nonceReveal {
		m, val = mElectReveal, &r.Nonce
	}
	err := t.n.client.call(ctx, t.addr[id], m, commitReq{RequestID: [32]byte(requestID)}, &r)
	if err == nil && r.NodeID != id {
		err = fmt.Errorf("%w: %s answered for %s", ErrBadRequest, r.NodeID, id)
	}
	return *val, err
}

// RevealRun has node id reveal its nonce and run the request in one
// exchange (mElectRevealRun), or locally if id is this node.
func (t *electionTransport) RevealRun(ctx context.Context, id string, requestID []byte) ([election.Size]byte, election.Execution, error) {
	nonce, out, err := t.revealRun(ctx, id)
	if err != nil {
		return nonce, election.Execution{}, err
	}
	return nonce, t.keep(id, checkedExec(id, out)), nil
}

func (t *electionTransport) revealRun(ctx context.Context, id string) ([election.Size]byte, execrecord.Execution, error) {
	if id == t.n.info.ID {
		nonce, err := t.n.revealNonce(t.er.RequestID[:])
		if err != nil {
			return nonce, execrecord.Execution{}, err
		}
		return nonce, t.n.execLocal(ctx, t.er), nil
	}
	req := revealRunReq{Exec: t.er}
	req.Pledge, req.ByPledge = t.pledgeOf(id)
	body, err := req.marshal()
	if err != nil {
		return [election.Size]byte{}, execrecord.Execution{}, err
	}
	resp, err := t.n.client.callRaw(ctx, t.addr[id], mElectRevealRun, body)
	if refusedMethod(err) {
		if req.ByPledge {
			t.n.pledges.Forget(id)
			return [election.Size]byte{}, execrecord.Execution{}, err
		}
		nonce, err := t.legacyNonce(ctx, id, nonceReveal, t.er.RequestID[:])
		if err != nil {
			return nonce, execrecord.Execution{}, err
		}
		return nonce, t.n.runOnce(ctx, id, t.addr[id], t.er, t.timeout), nil
	}
	var r revealRunResp
	if err == nil {
		err = r.unmarshal(resp)
	}
	if err == nil && r.Exec.NodeID != id {
		err = fmt.Errorf("%w: %s answered for %s", ErrBadRequest, r.Exec.NodeID, id)
	}
	t.answered(id, req.ByPledge, r.Next, err)
	return r.Nonce, r.Exec, err
}

// Run runs the request on node id alone.
func (t *electionTransport) Run(ctx context.Context, id string) election.Execution {
	return t.keep(id, t.n.runOn(ctx, id, t.addr[id], t.er, t.timeout))
}

// keep stores out as node id's execution and returns it as the election
// compares it.
func (t *electionTransport) keep(id string, out execrecord.Execution) election.Execution {
	t.mu.Lock()
	t.outs[id] = out
	t.mu.Unlock()
	return election.Execution{NodeID: id, Hash: out.Hash, Failed: out.Err != ""}
}

// handleElectNonce serves mElectNonce: this node, as a candidate, commits
// to a nonce for a request, reveals it, or reveals a pledge; the answer
// brings a fresh pledge.
func (n *Node) handleElectNonce(_ context.Context, body []byte) (any, error) {
	var req nonceReq
	if err := req.unmarshal(body); err != nil {
		return nil, err
	}
	var v [election.Size]byte
	var err error
	switch req.Op {
	case nonceCommit:
		v, err = n.commitNonce(req.RequestID[:])
	case nonceReveal:
		v, err = n.revealNonce(req.RequestID[:])
	default:
		v, err = n.revealPledge(req.Pledge)
	}
	if err != nil {
		return nil, err
	}
	return rawBody(nonceResp{NodeID: n.info.ID, Value: v, Next: n.nextPledge()}.marshal()), nil
}

// handleRevealRun serves mElectRevealRun: this node reveals its nonce for
// the request (or behind a pledge) and, if it had one, runs the request;
// the answer brings a fresh pledge.
func (n *Node) handleRevealRun(ctx context.Context, body []byte) (any, error) {
	var req revealRunReq
	if err := req.unmarshal(body); err != nil {
		return nil, err
	}
	var nonce [election.Size]byte
	var err error
	if req.ByPledge {
		nonce, err = n.revealPledge(req.Pledge)
	} else {
		nonce, err = n.revealNonce(req.Exec.RequestID[:])
	}
	if err != nil {
		return nil, err
	}
	n.running.Add(1)
	defer n.running.Add(-1)
	out, err := revealRunResp{Nonce: nonce, Exec: n.execLocal(ctx, req.Exec), Next: n.nextPledge()}.marshal()
	if err != nil {
		return nil, err
	}
	return rawBody(out), nil
}

// nextPledge is a fresh pledge of this node for its leader's later
// elections, if it can make one (election.MaxPledges).
func (n *Node) nextPledge() nextPledge {
	h, err := n.nonces.Pledge()
	return nextPledge{Present: err == nil, H: h}
}

// revealPledge reveals the nonce behind one of this node's pledges.
func (n *Node) revealPledge(h [election.Size]byte) ([election.Size]byte, error) {
	nonce, err := n.nonces.RevealPledge(h)
	if errors.Is(err, election.ErrNoCommitment) {
		return nonce, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return nonce, err
}

// commitNonce is this node's commitment as a candidate (election.Nonces),
// its errors converted.
func (n *Node) commitNonce(requestID []byte) ([election.Size]byte, error) {
	h, err := n.nonces.Commit(requestID)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return h, nil
}

// revealNonce reveals this node's nonce for a request it committed to.
func (n *Node) revealNonce(requestID []byte) ([election.Size]byte, error) {
	nonce, err := n.nonces.Reveal(requestID)
	if errors.Is(err, election.ErrNoCommitment) {
		return nonce, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return nonce, err
}

// caughtUp makes sure this leader's store holds every entry committed
// before its term: a raft barrier, once per term.
func (n *Node) caughtUp() error {
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
		return n.convert(err)
	}
	n.barrierTerm.Store(term)
	return nil
}

// recordedInvocation finds the committed execution record of (caller,
// request ID) in this node's store.
func (n *Node) recordedInvocation(req InvokeRequest) (InvokeResult, bool, error) {
	id, loc, ok, err := n.store.LookupKey(req.Caller, InvokeKey(req.RequestID))
	if err != nil {
		return InvokeResult{}, false, storeErr(err)
	}
	if !ok {
		return InvokeResult{}, false, nil
	}
	rec, err := n.store.Tx(id)
	if err != nil {
		return InvokeResult{}, false, storeErr(err)
	}
	t, err := chain.DecodeTx(rec.TxBytes)
	if err != nil || t.Kind != chain.TxExec {
		return InvokeResult{}, false, fmt.Errorf("%w: request %x is recorded by a transaction that is not an execution record", ErrConflict, req.RequestID[:6])
	}
	xr, err := execrecord.Decode(t.Payload)
	if err != nil {
		return InvokeResult{}, false, fmt.Errorf("%w: execution record of %x: %v", ErrStore, req.RequestID[:6], err)
	}
	if req.Function != "" && xr.Function != req.Function {
		return InvokeResult{}, false, fmt.Errorf("%w: request ID %x was used for function %s", ErrConflict, req.RequestID[:6], xr.Function)
	}
	res := InvokeResult{Record: xr, Receipt: Receipt{ID: id, Group: n.group, Height: loc.Height, Index: loc.Index, Duplicate: true}}
	if !xr.Agreed {
		return res, true, disagreement(res)
	}
	return res, true, nil
}

// disagreement is the error that goes with res, a committed record of
// executions that disagreed: ErrNoAgreement with the conflict and where
// it is recorded.
func disagreement(res InvokeResult) error {
	return fmt.Errorf("%w: %s (recorded at height %d)", ErrNoAgreement, res.Record.Conflict, res.Receipt.Height)
}

func describeExecs(xs []execrecord.Execution) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += "; "
		}
		if x.Err != "" {
			s += fmt.Sprintf("%.12s failed: %s", x.NodeID, x.Err)
		} else {
			s += fmt.Sprintf("%.12s: %s %x", x.NodeID, x.Outcome, x.Hash[:6])
		}
	}
	return s
}

// Functions lists the deployed functions, as this node's group's leader
// knows them (every group holds every deployment).
func (n *Node) Functions(ctx context.Context) ([]fsm.FunctionMeta, error) {
	res, err := n.query(ctx, Query{Op: opFunctions, Group: n.group, Level: Default})
	return res.Funcs, err
}

// CheckDeployment compiles a deployment on this node, so a module that is
// not valid WebAssembly (or needs imports the sandbox does not offer) is
// refused before it is committed.
func (n *Node) CheckDeployment(ctx context.Context, d function.Deployment) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if _, err := n.rt.Deploy(ctx, d); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}
