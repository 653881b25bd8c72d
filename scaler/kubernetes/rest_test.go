package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// scaleServer serves the scale subresource of the workloads in replicas
// (by URL path) as the API server does, in JSON, and a 404 Status for any
// other path; it records the requests.
type scaleServer struct {
	mu       sync.Mutex
	replicas map[string]int
	requests []string
}

func (f *scaleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
	w.Header().Set("Content-Type", "application/json")
	n, ok := f.replicas[r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps \"x\" not found","reason":"NotFound","code":404}`)
		return
	}
	if r.Method == http.MethodPut {
		var s struct {
			Kind string `json:"kind"`
			Spec struct {
				Replicas int `json:"replicas"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil || s.Kind != "Scale" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"reason":"BadRequest","code":400}`, fmt.Sprint(err, s.Kind))
			return
		}
		n = s.Spec.Replicas
		f.replicas[r.URL.Path] = n
	}
	fmt.Fprintf(w, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"x","namespace":"ns"},"spec":{"replicas":%d},"status":{"replicas":%d}}`, n, n)
}

// TestRESTScales: the provider's own REST client reads and updates the
// scale subresource of Deployments and StatefulSets at the API's paths,
// in JSON, and an API error (a 404 Status) is ErrAPI with the API's
// message.
func TestRESTScales(t *testing.T) {
	f := &scaleServer{replicas: map[string]int{
		"/apis/apps/v1/namespaces/ns/deployments/executors-1/scale": 0,
		"/apis/apps/v1/namespaces/ns/statefulsets/execs/scale":      2,
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	scales, err := newRESTScales(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dep, err := newProvider(Config{Namespace: "ns", Workload: "executors-{group}", Groups: 2}, scales, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dep.SetExecutors(ctx, 1, 3); err != nil || got != 3 {
		t.Fatalf("Deployment: SetExecutors(1, 3) = %d, %v", got, err)
	}
	if n, err := dep.Executors(ctx, 1); err != nil || n != 3 {
		t.Fatalf("Deployment: Executors = %d, %v", n, err)
	}
	ss, err := newProvider(Config{Namespace: "ns", Workload: "execs", Kind: KindStatefulSet, Groups: 1}, scales, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ss.SetExecutors(ctx, 0, 0); err != nil || got != 0 {
		t.Fatalf("StatefulSet: SetExecutors(0, 0) = %d, %v", got, err)
	}
	_, err = dep.Executors(ctx, 0) // executors-0 does not exist
	if !errors.Is(err, ErrAPI) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing Deployment: %v, want ErrAPI with the API's message", err)
	}
	want := []string{
		"GET /apis/apps/v1/namespaces/ns/deployments/executors-1/scale ",
		"PUT /apis/apps/v1/namespaces/ns/deployments/executors-1/scale application/json",
		"GET /apis/apps/v1/namespaces/ns/deployments/executors-1/scale ",
		"GET /apis/apps/v1/namespaces/ns/statefulsets/execs/scale ",
		"PUT /apis/apps/v1/namespaces/ns/statefulsets/execs/scale application/json",
		"GET /apis/apps/v1/namespaces/ns/deployments/executors-0/scale ",
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.requests) != fmt.Sprint(want) {
		t.Fatalf("requests:\n%q\nwant:\n%q", f.requests, want)
	}
}
