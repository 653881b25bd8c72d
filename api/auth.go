package api

import (
	"context"
	"fmt"
	"net/http"

	"qledger/pki"
)

// access is the class of callers an endpoint admits. With TLS the
// caller's role comes from its client certificate; the table in
// docs/SECURITY.md lists every endpoint's class.
type access uint8

const (
	// anyone: no certificate needed (liveness and readiness probes).
	anyone access = iota
	// readers: auditor, submitter, admin and node. Handlers narrow it
	// where an item is access-controlled (a submitter reads only its own
	// transactions; shares only go to their readers).
	readers
	// writers: submitter and node.
	writers
	// admins: admin and node.
	admins
)

func (a access) String() string {
	return [...]string{"anyone", "auditor, submitter or admin", "submitter", "admin"}[a]
}

// allows reports whether role may call an endpoint of class a. A node
// certificate may do everything: nodes forward requests for their callers.
func (a access) allows(r pki.Role) bool {
	switch {
	case a == anyone, r == pki.RoleNode:
		return true
	case a == readers:
		return r == pki.RoleAuditor || r == pki.RoleSubmitter || r == pki.RoleAdmin
	case a == writers:
		return r == pki.RoleSubmitter
	case a == admins:
		return r == pki.RoleAdmin
	}
	return false
}

type callerKey struct{}

// caller is the authenticated identity of a request; ok is false without
// TLS (a cluster run without a CA, where every caller is anonymous).
func caller(r *http.Request) (pki.Identity, bool) {
	id, ok := r.Context().Value(callerKey{}).(pki.Identity)
	return id, ok
}

// submitter is what a transaction records as its submitter: "role:name"
// from the client certificate, "" without TLS.
func submitter(r *http.Request) string {
	if id, ok := caller(r); ok {
		return id.String()
	}
	return ""
}

// readerName is the name checked against a shared item's reader list:
// the certificate's common name with TLS, else the X-Qledger-Caller
// header (a cluster without a CA has no authenticated callers).
func (s *Server) readerName(r *http.Request) string {
	if id, ok := caller(r); ok {
		return id.Name
	}
	return r.Header.Get(CallerHeader)
}

// guard wraps h with the endpoint's access check: 401 without a client
// certificate, 403 with a role the class does not admit.
func (s *Server) guard(a access, h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.TLS == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pki.PeerIdentity(r.TLS)
		if !ok {
			if a == anyone {
				h(w, r)
				return
			}
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "a client certificate from the cluster CA is required")
			return
		}
		if !a.allows(id.Role) {
			writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("role %s may not %s %s (needs %s)", id.Role, r.Method, r.URL.Path, a))
			return
		}
		if a != anyone {
			if ok, wait := s.lim.allow(id.String()); !ok {
				writeRateLimited(w, id.String(), wait)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, id)))
	}
}
