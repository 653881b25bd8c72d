package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"qledger/api/client"
	"qledger/cluster"
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
func (s *Server) getInvocation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 32 {
		s.fail(w, r, badRequest("invocation ID must be 64 hex digits"))
		return
	}
	caller := submitter(r)
	if st, ok := s.async.get(caller, id); ok {
		writeJSON(w, http.StatusOK, st)
		return
	}
	var rid [32]byte
	copy(rid[:], b)
	res, err := s.fns.Invocation(r.Context(), caller, rid)
	if err != nil {
		if errors.Is(err, cluster.ErrNotFound) {
			writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no invocation %s of this caller", id))
			return
		}
		s.fail(w, r, err)
		return
	}
	out := invokeWire(res, res.Receipt.Group)
	writeJSON(w, http.StatusOK, client.InvocationStatus{ID: id, Group: res.Receipt.Group, Status: "done", Result: &out})
}
