package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func replicas(n int32) *int32 { return &n }

// clientsetScales is the provider's scaleClient over a client-go
// clientset's typed apps/v1 client (the fake one here).
type clientsetScales struct{ c k8s.Interface }

func (a clientsetScales) GetScale(ctx context.Context, resource, ns, name string) (*autoscalingv1.Scale, error) {
	if resource == "statefulsets" {
		return a.c.AppsV1().StatefulSets(ns).GetScale(ctx, name, metav1.GetOptions{})
	}
	return a.c.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
}

func (a clientsetScales) UpdateScale(ctx context.Context, resource, ns, name string, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	if resource == "statefulsets" {
		return a.c.AppsV1().StatefulSets(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	}
	return a.c.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
}

// newClientset is a fake clientset holding objs that also serves the
// scale subresource of Deployments and StatefulSets as the API server
// does (the fake's object tracker stores whole objects only): a get
// returns a Scale of the workload's spec.replicas, an update sets them.
func newClientset(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	for _, res := range []string{"deployments", "statefulsets"} {
		c.PrependReactor("*", res, func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "scale" {
				return false, nil, nil
			}
			gvr := a.GetResource()
			var name string
			var want int32 = -1
			switch a := a.(type) {
			case k8stesting.GetAction:
				name = a.GetName()
			case k8stesting.UpdateAction:
				s := a.GetObject().(*autoscalingv1.Scale)
				name, want = s.Name, s.Spec.Replicas
			default:
				return true, nil, fmt.Errorf("verb %s on %s/scale is not served", a.GetVerb(), res)
			}
			obj, err := c.Tracker().Get(gvr, a.GetNamespace(), name)
			if err != nil {
				return true, nil, err
			}
			var spec **int32
			switch o := obj.(type) {
			case *appsv1.Deployment:
				spec = &o.Spec.Replicas
			case *appsv1.StatefulSet:
				spec = &o.Spec.Replicas
			}
			if want >= 0 {
				*spec = replicas(want)
				if err := c.Tracker().Update(gvr, obj, a.GetNamespace()); err != nil {
					return true, nil, err
				}
			}
			return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: a.GetNamespace(), Name: name}, Spec: autoscalingv1.ScaleSpec{Replicas: **spec}}, nil
		})
	}
	return c
}

func deployment(ns, name string, n int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{Replicas: replicas(n)}}
}

// specReplicas reads a Deployment's spec.replicas from the fake API.
func specReplicas(t *testing.T, c *fake.Clientset, ns, name string) int32 {
	t.Helper()
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// TestProviderScalesDeployments: each group's Deployment follows
// SetExecutors through the scale subresource (get and update, the only
// verbs the Role grants), the other group's is untouched, and the scale
// actions are the ones sent.
func TestProviderScalesDeployments(t *testing.T) {
	c := newClientset(deployment("qledger", "qledger-executor-0", 0), deployment("qledger", "qledger-executor-1", 2))
	p, err := newProvider(Config{Namespace: "qledger", Workload: "qledger-executor-{group}", Groups: 2}, clientsetScales{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.ClearActions()
	for _, step := range []struct{ group, set int }{{0, 1}, {0, 2}, {0, 1}, {0, 0}, {1, 3}} {
		got, err := p.SetExecutors(ctx, step.group, step.set)
		if err != nil || got != step.set {
			t.Fatalf("SetExecutors(%d, %d) = %d, %v", step.group, step.set, got, err)
		}
		if n, err := p.Executors(ctx, step.group); err != nil || n != step.set {
			t.Fatalf("Executors(%d) = %d, %v after setting %d", step.group, n, err, step.set)
		}
		for _, a := range c.Actions() {
			if a.GetSubresource() != "scale" || a.GetResource().Resource != "deployments" || (a.GetVerb() != "get" && a.GetVerb() != "update") {
				t.Errorf("the provider sent %s %s/%s, outside get/update on deployments/scale", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
			}
		}
		if r := specReplicas(t, c, "qledger", p.Workload(step.group)); int(r) != step.set {
			t.Fatalf("Deployment %s has spec.replicas %d, want %d", p.Workload(step.group), r, step.set)
		}
		c.ClearActions()
	}
	if r := specReplicas(t, c, "qledger", "qledger-executor-0"); r != 0 {
		t.Fatalf("group 0's Deployment has %d replicas after group 1 scaled", r)
	}
	// Setting the count it already has sends no update.
	c.ClearActions()
	if got, err := p.SetExecutors(ctx, 1, 3); err != nil || got != 3 {
		t.Fatalf("SetExecutors to the same count = %d, %v", got, err)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() == "update" {
			t.Fatal("an update for an unchanged count")
		}
	}
}

// TestProviderStatefulSet scales a StatefulSet the same way.
func TestProviderStatefulSet(t *testing.T) {
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "executors"}, Spec: appsv1.StatefulSetSpec{Replicas: replicas(1)}}
	c := newClientset(ss)
	p, err := newProvider(Config{Namespace: "ns", Workload: "executors", Kind: KindStatefulSet, Groups: 1}, clientsetScales{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.SetExecutors(context.Background(), 0, 4); err != nil || got != 4 {
		t.Fatalf("SetExecutors = %d, %v", got, err)
	}
	got, err := c.AppsV1().StatefulSets("ns").Get(context.Background(), "executors", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 4 {
		t.Fatalf("StatefulSet replicas after SetExecutors(4): %v, %v", got, err)
	}
}

// TestProviderErrors: a missing workload, a refused update and a negative
// count are errors that change nothing.
func TestProviderErrors(t *testing.T) {
	c := newClientset(deployment("qledger", "executors", 2))
	p, err := newProvider(Config{Namespace: "qledger", Workload: "executors", Groups: 1}, clientsetScales{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	missing, _ := newProvider(Config{Namespace: "qledger", Workload: "nothing-here", Groups: 1}, clientsetScales{c}, nil)
	if _, err := missing.Executors(ctx, 0); !errors.Is(err, ErrAPI) {
		t.Fatalf("Executors of a missing Deployment: %v, want ErrAPI", err)
	}
	if _, err := p.SetExecutors(ctx, 0, -1); !errors.Is(err, ErrConfig) {
		t.Fatalf("SetExecutors(-1): %v, want ErrConfig", err)
	}
	c.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden: no update on deployments/scale")
	})
	got, err := p.SetExecutors(ctx, 0, 3)
	if !errors.Is(err, ErrAPI) || got != 2 {
		t.Fatalf("refused update: SetExecutors = %d, %v; want 2 and ErrAPI", got, err)
	}
	if r := specReplicas(t, c, "qledger", "executors"); r != 2 {
		t.Fatalf("refused update changed replicas to %d", r)
	}
}

// TestConfigValidate rejects what cannot scale the right workload.
func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Workload: "x", Groups: 1},
		{Namespace: "n", Groups: 1},
		{Namespace: "n", Workload: "x", Kind: "DaemonSet", Groups: 1},
		{Namespace: "n", Workload: "x", Groups: 0},
		{Namespace: "n", Workload: "executors", Groups: 3},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
	if err := (Config{Namespace: "n", Workload: "executors-{group}", Groups: 3}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Namespace: "n", Workload: "x", Groups: 1}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New outside a pod without a kubeconfig: %v, want ErrConfig", err)
	}
}
