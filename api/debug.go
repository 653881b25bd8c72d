package api

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
)

// debugRoutes serves Go's runtime profiles under /debug/pprof/ to admins
// (and nodes): the index, CPU profile (?seconds=N), execution trace,
// symbol lookup, command line, and every named profile (heap, goroutine,
// allocs, block, mutex, threadcreate: /debug/pprof/{name}). Without
// TLS, as every other endpoint, they are open. A CPU profile or trace
// ends at the request timeout (Config.RequestTimeout) at the latest.
func (s *Server) debugRoutes() {
	s.mux.HandleFunc("/debug/pprof/", s.guard(admins, servePprof))
	s.table = append(s.table, routeEntry{"GET", "/debug/pprof/", admins}, routeEntry{"POST", "/debug/pprof/{name}", admins})
}

// pprofHandlers are the pprof endpoints that are not a named profile.
var pprofHandlers = map[string]http.HandlerFunc{
	"cmdline": pprof.Cmdline,
	"profile": pprof.Profile,
	"symbol":  pprof.Symbol,
	"trace":   pprof.Trace,
}

func servePprof(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
	if r.Method != http.MethodGet && !(r.Method == http.MethodPost && name == "symbol") {
		writeError(w, http.StatusMethodNotAllowed, codeMethod, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	if h, ok := pprofHandlers[name]; ok {
		h(w, r)
		return
	}
	pprof.Index(w, r)
}
