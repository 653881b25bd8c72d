package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"qledger/cluster"
	"qledger/scaler/kubernetes"
)

// fakeScaleAPI serves the scale subresource of one Deployment as the
// Kubernetes API server does (GET and PUT of an autoscaling/v1 Scale) and
// records every request.
type fakeScaleAPI struct {
	path string

	mu       sync.Mutex
	replicas int
	requests []string
	puts     []int
}

func (f *fakeScaleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.URL.Path != f.path {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// client-go sends protobuf or JSON; the API server takes either.
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		s, ok := obj.(*autoscalingv1.Scale)
		if err != nil || !ok {
			http.Error(w, fmt.Sprintf("not a Scale (%s): %v", r.Header.Get("Content-Type"), err), http.StatusBadRequest)
			return
		}
		f.replicas = int(s.Spec.Replicas)
		f.puts = append(f.puts, f.replicas)
	default:
		http.Error(w, "verb not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"qledger-executor","namespace":"qledger"},"spec":{"replicas":%d},"status":{"replicas":%d}}`, f.replicas, f.replicas)
}

func (f *fakeScaleAPI) snapshot() (puts []int, requests []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.puts...), append([]string(nil), f.requests...)
}

// TestKubernetesProviderThroughTheAPI runs a node whose autoscaler uses
// the kubernetes provider with a kubeconfig naming a fake API server: the
// group leader raises the executor Deployment to the minimum through the
// scale subresource (client-go's real REST path), the decision shows in
// the node's autoscale status, and nothing but GET and PUT of that
// Deployment's scale is asked for.
func TestKubernetesProviderThroughTheAPI(t *testing.T) {
	fake := &fakeScaleAPI{path: "/apis/apps/v1/namespaces/qledger/deployments/qledger-executor/scale"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: fake, user: u}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testNodeConfig(t)
	ac := cluster.DefaultAutoscaleConfig()
	ac.Min, ac.Max, ac.Interval = 1, 2, 50*time.Millisecond
	cfg.Autoscale = &Autoscale{Config: ac, Kubernetes: &kubernetes.Config{Namespace: "qledger", Workload: "qledger-executor", Kubeconfig: kubeconfig}}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer n.Stop(ctx)
	for {
		if d := n.Cluster().AutoscaleStatus(); d != nil && d.Executors == 1 && d.Err == "" {
			break
		}
		select {
		case <-ctx.Done():
			puts, reqs := fake.snapshot()
			t.Fatalf("the leader never scaled the Deployment to the minimum: status %+v, PUTs %v, %d requests", n.Cluster().AutoscaleStatus(), puts, len(reqs))
		case <-time.After(20 * time.Millisecond):
		}
	}
	puts, reqs := fake.snapshot()
	if len(puts) != 1 || puts[0] != 1 {
		t.Fatalf("PUTs of replicas %v, want exactly [1] (one step to the minimum, then held)", puts)
	}
	for _, r := range reqs {
		if r != "GET "+fake.path && r != "PUT "+fake.path {
			t.Fatalf("request %q beyond get/update of the Deployment's scale", r)
		}
	}
}

// TestKubernetesProviderNeedsAnAPI: outside a pod and without a
// kubeconfig the node does not start, and says why.
func TestKubernetesProviderNeedsAnAPI(t *testing.T) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		t.Skip("running in a pod: the in-cluster configuration exists")
	}
	cfg := testNodeConfig(t)
	cfg.Autoscale = &Autoscale{Config: cluster.DefaultAutoscaleConfig(), Kubernetes: &kubernetes.Config{Namespace: "qledger", Workload: "qledger-executor"}}
	n, err := Start(cfg)
	if err == nil {
		n.Stop(context.Background())
		t.Fatal("a kubernetes provider without an API started")
	}
	if !errors.Is(err, kubernetes.ErrConfig) {
		t.Fatalf("error %v, want kubernetes.ErrConfig", err)
	}
}
