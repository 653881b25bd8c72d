package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/pki"
)

// submitBody is POST /v1/tx's body as the server reads it: payload must be
// present (it may be empty) and unknown fields are refused.
type submitBody struct {
	Payload *string `json:"payload"`
	Group   *int    `json:"group"`
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var body submitBody
	if err := decodeStrict(r.Body, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.Payload == nil {
		s.fail(w, r, badRequest("payload is required (base64; may be empty)"))
		return
	}
	payload, err := base64.StdEncoding.DecodeString(*body.Payload)
	if err != nil {
		s.fail(w, r, badRequest("payload is not valid base64: %v", err))
		return
	}
	rec, replayed, err := s.submitTx(r, payload, body.Group, r.Header.Get("Idempotency-Key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, rec)
}

// submitTx is the write path shared by the clear and sealed endpoints.
func (s *Server) submitTx(r *http.Request, payload []byte, group *int, key string) (client.Receipt, bool, error) {
	if err := checkKey(key); err != nil {
		return client.Receipt{}, false, err
	}
	release, ok := s.lim.claimKey(submitter(r), key)
	if !ok {
		return client.Receipt{}, false, fmt.Errorf("%w: key %q", errInFlight, key)
	}
	defer release()
	n := s.ledger.Groups()
	g := cluster.GroupForKey("", key, n)
	if group != nil {
		if *group < 0 || *group >= n {
			return client.Receipt{}, false, badRequest("group %d does not exist (the cluster has groups 0..%d)", *group, n-1)
		}
		g = *group
	}
	rec, err := s.ledger.Submit(r.Context(), chain.Tx{Kind: chain.TxData, Group: uint32(g), IdempotencyKey: key, Submitter: submitter(r), Payload: payload})
	if err != nil {
		return client.Receipt{}, false, err
	}
	return client.Receipt{ID: rec.ID.String(), Group: rec.Group, Height: rec.Height, Index: rec.Index}, rec.Duplicate, nil
}

func checkKey(key string) error {
	if len(key) > chain.MaxKeySize {
		return badRequest("Idempotency-Key is %d bytes, limit %d", len(key), chain.MaxKeySize)
	}
	for _, c := range key {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) {
			return badRequest("Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

func level(r *http.Request) (cluster.Level, error) {
	l, err := cluster.ParseLevel(r.URL.Query().Get("level"))
	if err != nil {
		return "", badRequest("level must be stale, default or linearizable, got %q", r.URL.Query().Get("level"))
	}
	return l, nil
}

func (s *Server) groupParam(r *http.Request) (int, error) {
	g, err := strconv.Atoi(r.PathValue("g"))
	if err != nil || g < 0 || g >= s.ledger.Groups() {
		return 0, fmt.Errorf("%w: group %q does not exist (the cluster has groups 0..%d)", cluster.ErrNotFound, r.PathValue("g"), s.ledger.Groups()-1)
	}
	return g, nil
}

func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("%s must be a non-negative integer, got %q", name, v)
	}
	return n, nil
}

func hexes(hs []chain.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func (s *Server) getTx(w http.ResponseWriter, r *http.Request) {
	id, err := chain.ParseHash(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, badRequest("transaction ID must be 64 hex digits"))
		return
	}
	lv, err := level(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	group := -1
	if v := r.URL.Query().Get("group"); v != "" {
		if group, err = strconv.Atoi(v); err != nil || group < 0 || group >= s.ledger.Groups() {
			s.fail(w, r, badRequest("group %q does not exist", v))
			return
		}
	}
	rec, g, err := s.ledger.Tx(r.Context(), id, group, lv)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fields, err := client.FieldsOf(rec.TxBytes)
	if err != nil {
		s.fail(w, r, fmt.Errorf("api: stored transaction does not decode: %w", err))
		return
	}
	if id, ok := caller(r); ok && id.Role == pki.RoleSubmitter && fields.Submitter != id.String() {
		writeError(w, http.StatusForbidden, codeForbidden, "a submitter reads only its own transactions")
		return
	}
	out := client.TxResponse{
		ID: rec.ID.String(), Group: g, Height: rec.Location.Height, Index: rec.Location.Index,
		TxBytes: rec.TxBytes, LeafHash: rec.LeafHash.String(),
		Proof: client.Proof{LeafIndex: rec.Location.Index, TreeSize: rec.TreeSize, Root: rec.Root.String(), Hashes: hexes(rec.Proof)},
		Tx:    fields,
	}
	if s.withheld(r, rec.TxBytes) {
		out.TxBytes, out.Tx.Payload, out.Withheld = nil, nil, true
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) head(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	sh, err := s.ledger.SignedHead(r.Context(), g, lv)
	if err != nil {
		return err
	}
	if !sh.OK {
		// An empty chain: height 0, the empty log.
		writeJSON(w, http.StatusOK, client.Head{Version: chain.BlockVersion, Group: uint32(g), LogRoot: chain.EmptyRoot().String()})
		return nil
	}
	out := client.HeadFromHeader(sh.Header)
	out.Signature, out.Signer, out.CertChain, out.SignedAt = sh.Signature, sh.Signer, sh.CertChain, sh.SignedAt
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) block(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	height, err := strconv.ParseUint(r.PathValue("height"), 10, 64)
	if err != nil || height == 0 {
		return badRequest("height must be a positive integer, got %q", r.PathValue("height"))
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	raw, err := s.ledger.Block(r.Context(), g, height, lv)
	if err != nil {
		return err
	}
	b, err := client.BlockFromRaw(raw)
	if err != nil {
		return fmt.Errorf("api: stored block does not decode: %w", err)
	}
	writeJSON(w, http.StatusOK, s.redactBlock(r, b))
	return nil
}

func (s *Server) blocks(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	from, err := uintParam(r, "from", 1)
	if err != nil {
		return err
	}
	limit, err := uintParam(r, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > cluster.MaxBlocksPerRead {
		return badRequest("limit must be 1..%d", cluster.MaxBlocksPerRead)
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	raws, err := s.ledger.Blocks(r.Context(), g, from, int(limit), lv)
	if err != nil {
		return err
	}
	out := client.BlockList{Blocks: make([]client.Block, 0, len(raws))}
	for _, raw := range raws {
		b, err := client.BlockFromRaw(raw)
		if err != nil {
			return fmt.Errorf("api: stored block does not decode: %w", err)
		}
		out.Blocks = append(out.Blocks, s.redactBlock(r, b))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		return badRequest("from and to (log sizes) are required")
	}
	from, err := uintParam(r, "from", 0)
	if err != nil {
		return err
	}
	to, err := uintParam(r, "to", 0)
	if err != nil {
		return err
	}
	if from > to {
		return badRequest("from (%d) must not exceed to (%d)", from, to)
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	p, err := s.ledger.Consistency(r.Context(), g, from, to, lv)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, client.ConsistencyResponse{From: p.From, To: p.To, RootFrom: p.RootFrom.String(), RootTo: p.RootTo.String(), Hashes: hexes(p.Hashes)})
	return nil
}

func alarmWire(a cluster.ChainAlarm) client.ChainAlarm {
	w := client.ChainAlarm{Node: a.Node, Group: a.Group, Height: a.Height, What: a.What, Source: a.Source}
	if !a.Found.IsZero() {
		w.Found = a.Found.UTC().Format(time.RFC3339)
	}
	return w
}

func statusWire(st cluster.ClusterStatus) client.ClusterStatus {
	out := client.ClusterStatus{Node: client.NodeInfo(st.Node)}
	if st.ChainAlarm != nil {
		a := alarmWire(*st.ChainAlarm)
		out.ChainAlarm = &a
	}
	for _, g := range st.Groups {
		gs := client.GroupStatus{
			Group: g.Group, Leader: g.Leader, HasLeader: g.HasLeader, Reporter: g.Reporter, State: g.State,
			Term: g.Term, Commit: g.Commit, Applied: g.Applied, LastLog: g.LastLog, Height: g.Height, LogSize: g.LogSize,
			Error: g.Error, Members: []client.Member{},
			Voters: g.Voters, NonVoters: g.NonVoters, HealthyVoters: g.HealthyVoters, FailureTolerance: g.FailureTolerance, QueueDepth: g.QueueDepth,
		}
		for _, m := range g.Members {
			gs.Members = append(gs.Members, client.Member{ID: m.ID, Group: m.Group, Addr: m.Addr, APIAddr: m.APIAddr, Suffrage: m.Suffrage, Leader: m.Leader,
				Role: string(m.Role), Gossip: m.Gossip, Healthy: m.Healthy, Reason: m.Reason, Stable: m.Stable, Version: m.Version, Protocol: m.Protocol, RaftLag: m.RaftLag, ChainAlarm: m.ChainAlarm})
		}
		for _, a := range g.ChainAlarms {
			gs.ChainAlarms = append(gs.ChainAlarms, alarmWire(a))
		}
		if d := g.Autoscale; d != nil {
			gs.Autoscale = &client.ScaleDecision{At: d.At, Executors: d.Executors, Wanted: d.Wanted, Desired: d.Desired, InFlight: d.InFlight, ExecutorCPU: d.ExecutorCPU, Reason: d.Reason, Error: d.Err}
		}
		out.Groups = append(out.Groups, gs)
	}
	return out
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statusWire(s.members.Status(r.Context())))
}

// readyBody is /readyz's answer when the node is ready: every group has a
// leader and no chain alarm is raised. Degraded lists the members their
// group's leader judges unhealthy, with its reason, so an operator sees
// a group running short of healthy voters before it stops being ready.
type readyBody struct {
	Status   string           `json:"status"`
	Degraded []degradedMember `json:"degraded,omitempty"`
}

// degradedMember is one unhealthy member as /readyz reports it.
type degradedMember struct {
	Group  int    `json:"group"`
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// degraded lists the configuration members of every group that are not
// healthy, with the reason the status gives (or the gossip state).
func degraded(st cluster.ClusterStatus) []degradedMember {
	var out []degradedMember
	for _, g := range st.Groups {
		for _, m := range g.Members {
			if m.Healthy || m.Suffrage == "none" {
				continue
			}
			why := m.Reason
			if why == "" {
				why = "gossip: " + m.Gossip
			}
			out = append(out, degradedMember{Group: g.Group, Node: m.ID, Reason: why})
		}
	}
	return out
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ok, st := s.members.Ready(r.Context())
	if ok {
		writeJSON(w, http.StatusOK, readyBody{Status: "ready", Degraded: degraded(st)})
		return
	}
	if st.ChainAlarm != nil {
		writeError(w, http.StatusServiceUnavailable, codeChainCorrupt, st.ChainAlarm.Error())
		return
	}
	var missing []int
	for _, g := range st.Groups {
		if !g.HasLeader {
			missing = append(missing, g.Group)
		}
	}
	msg := fmt.Sprintf("groups without a leader: %v", missing)
	for _, d := range degraded(st) {
		msg += fmt.Sprintf("; group %d node %.12s: %s", d.Group, d.Node, d.Reason)
	}
	writeError(w, http.StatusServiceUnavailable, codeNoLeader, msg)
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var req client.JoinRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := cluster.ParseNodeID(req.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Addr == "" {
		s.fail(w, r, badRequest("addr (the node's raft/RPC address) is required"))
		return
	}
	resp, err := s.members.Join(r.Context(), cluster.NodeInfo{ID: req.ID, Group: id.Group(s.ledger.Groups()), Addr: req.Addr, APIAddr: req.APIAddr})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if resp.Bootstrap {
		s.fail(w, r, fmt.Errorf("%w: no node serves group %d yet; start the node with --bootstrap instead", cluster.ErrUnknownGroup, id.Group(s.ledger.Groups())))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"joined": req.ID, "group": id.Group(s.ledger.Groups())})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	if err := s.members.Remove(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": r.PathValue("id")})
}

// maxExecutors caps POST /v1/cluster/scale.
const maxExecutors = 64

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Scaler == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "this node cannot start nodes on request (qledger dev can); on real nodes executors follow demand with qledger node --autoscale")
		return
	}
	var req client.ScaleRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Executors < 0 || req.Executors > maxExecutors {
		s.fail(w, r, badRequest("executors must be 0..%d", maxExecutors))
		return
	}
	n, err := s.cfg.Scaler.ScaleExecutors(r.Context(), req.Executors)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ScaleRequest{Executors: n})
}

func (s *Server) scrub(w http.ResponseWriter, r *http.Request) {
	s.onReplicas(w, r, s.members.Scrub)
}

func (s *Server) repair(w http.ResponseWriter, r *http.Request) {
	s.onReplicas(w, r, s.members.Repair)
}

func (s *Server) onReplicas(w http.ResponseWriter, r *http.Request, op func(context.Context, cluster.ScrubRequest) ([]cluster.ScrubReport, error)) {
	var req client.ScrubRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	reports, err := op(r.Context(), cluster.ScrubRequest{Group: req.Group, Node: req.Node})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := client.ScrubResponse{Reports: []client.ScrubReport{}}
	for _, rep := range reports {
		cr := client.ScrubReport{Node: rep.Node, Group: rep.Group, Blocks: rep.Blocks, Txs: rep.Txs, Seconds: rep.Seconds, Error: rep.Error}
		if rep.Alarm != nil {
			a := alarmWire(*rep.Alarm)
			cr.Alarm = &a
		}
		out.Reports = append(out.Reports, cr)
	}
	writeJSON(w, http.StatusOK, out)
}
