package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/pki"
)

// asyncTable holds the asynchronous invocations this gateway started, by
// (caller, request ID), until they are read or grow old. Once a record is
// committed it is also on the chain, where GET /v1/invocations/{id} finds
// it from any gateway.
type asyncTable struct {
	mu      sync.Mutex
	entries map[string]*asyncEntry
}

type asyncEntry struct {
	st   client.InvocationStatus
	done time.Time
}

const (
	// maxAsync bounds the table; beyond it new asynchronous invocations
	// are refused with 429 until old ones age out.
	maxAsync = 4096
	// asyncKeep is how long a finished entry stays.
	asyncKeep = 10 * time.Minute
)

func asyncKey(caller, id string) string { return caller + "\x00" + id }

// start records inv as pending and runs it in the background.
func (t *asyncTable) start(s *Server, caller string, inv invocation) (client.InvocationStatus, error) {
	id := hex.EncodeToString(inv.rid[:])
	st := client.InvocationStatus{ID: id, Group: inv.group, Status: "pending"}
	t.mu.Lock()
	if t.entries == nil {
		t.entries = map[string]*asyncEntry{}
	}
	now := time.Now()
	for k, e := range t.entries {
		if !e.done.IsZero() && now.Sub(e.done) > asyncKeep {
			delete(t.entries, k)
		}
	}
	if e, ok := t.entries[asyncKey(caller, id)]; ok {
		t.mu.Unlock()
		return e.st, nil // the same request again: its state so far
	}
	if len(t.entries) >= maxAsync {
		t.mu.Unlock()
		return st, fmt.Errorf("%w: %d asynchronous invocations are being kept", errTooManyInvocations, maxAsync)
	}
	t.entries[asyncKey(caller, id)] = &asyncEntry{st: st}
	t.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.RequestTimeout)
		defer cancel()
		res, err := s.runInvoke(ctx, caller, inv, s.execKey[:], s.execKeyID)
		t.mu.Lock()
		defer t.mu.Unlock()
		e := t.entries[asyncKey(caller, id)]
		if e == nil {
			return
		}
		e.done = time.Now()
		switch {
		case res.Receipt.Height > 0:
			e.st.Status, e.st.Result = "done", &res
		default:
			_, code := classify(err)
			e.st.Status, e.st.Error = "failed", &client.ErrorBody{Code: code, Error: err.Error()}
		}
	}()
	return st, nil
}

func (t *asyncTable) get(caller, id string) (client.InvocationStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[asyncKey(caller, id)]
	if !ok {
		return client.InvocationStatus{}, false
	}
	return e.st, true
}

// getInvocation answers the caller's invocation: pending or finished on
// this gateway, else its committed record from whichever group holds it.
// maxCallerLen bounds the caller a query names.
const maxCallerLen = 512

// invocationCaller is whose invocation GET /v1/invocations/{id} reads:
// the caller's own, or the one ?caller= names ("role:name", as execution
// records write it). Naming another caller is for auditors, admins and
// nodes, who read every execution record on the chain anyway; a submitter
// reads only its own.
func invocationCaller(r *http.Request) (string, error) {
	own := submitter(r)
	named := r.URL.Query().Get("caller")
	if named == "" || named == own {
		return own, nil
	}
	if len(named) > maxCallerLen || strings.ContainsFunc(named, func(c rune) bool { return c < ' ' || c > '~' }) {
		return "", badRequest("caller must be printable ASCII of at most %d bytes", maxCallerLen)
	}
	if id, ok := caller(r); ok && id.Role == pki.RoleSubmitter {
		return "", fmt.Errorf("%w: a submitter reads only its own invocations", errForbidden)
	}
	return named, nil
}

func (s *Server) getInvocation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 32 {
		s.fail(w, r, badRequest("invocation ID must be 64 hex digits"))
		return
	}
	caller, err := invocationCaller(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st, ok := s.async.get(caller, id); ok {
		writeJSON(w, http.StatusOK, st)
		return
	}
	var rid [32]byte
	copy(rid[:], b)
	res, err := s.fns.Invocation(r.Context(), caller, rid)
	if err != nil {
		if errors.Is(err, cluster.ErrNotFound) {
			writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no invocation %s of caller %q", id, caller))
			return
		}
		s.fail(w, r, err)
		return
	}
	out := invokeWire(res, res.Receipt.Group)
	writeJSON(w, http.StatusOK, client.InvocationStatus{ID: id, Group: res.Receipt.Group, Status: "done", Result: &out})
}
