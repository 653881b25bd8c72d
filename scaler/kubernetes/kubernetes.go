// Package kubernetes is the autoscaler's `kubernetes` executor provider:
// each group's executors are the replicas of one Deployment (or
// StatefulSet), and the provider reads and sets that workload's replica
// count through the Kubernetes API's scale subresource (a k8s.io/client-go
// REST client that knows only autoscaling/v1's Scale). Kubernetes then starts and stops the executor pods;
// a pod it stops gets SIGTERM, on which `qledger node` leaves its group
// (out of gossip and of the raft configuration) before it exits.
//
// It is the one home of k8s.io/client-go in qledger: only the node
// assembly (server) imports it. It does not import cluster; *Provider has
// the methods of cluster.ExecutorProvider.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Named errors.
var (
	// ErrConfig means a Config cannot be used.
	ErrConfig = errors.New("kubernetes: invalid config")
	// ErrAPI means the Kubernetes API refused or failed a request.
	ErrAPI = errors.New("kubernetes: API request failed")
)

// GroupPlaceholder in Config.Workload is replaced by the group number.
const GroupPlaceholder = "{group}"

// Workload kinds the provider scales.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
)

// Config names the executor workloads and how to reach the API.
type Config struct {
	// Namespace holds the workloads [required].
	Namespace string
	// Workload is the name of a group's executor workload; GroupPlaceholder
	// in it is replaced by the group (required when the cluster has more
	// than one group: each group needs its own workload, whose pods get
	// IDs in that group).
	Workload string
	// Kind is KindDeployment (default) or KindStatefulSet.
	Kind string
	// Kubeconfig, if set, is a kubeconfig file to use instead of the
	// in-cluster configuration (the pod's service account).
	Kubeconfig string
	// Groups is the cluster's number of groups.
	Groups int
}

// Validate checks the names and the placeholder.
func (c Config) Validate() error {
	switch {
	case c.Namespace == "":
		return fmt.Errorf("%w: no namespace", ErrConfig)
	case c.Workload == "":
		return fmt.Errorf("%w: no workload name", ErrConfig)
	case c.Kind != "" && c.Kind != KindDeployment && c.Kind != KindStatefulSet:
		return fmt.Errorf("%w: kind %q (%s or %s)", ErrConfig, c.Kind, KindDeployment, KindStatefulSet)
	case c.Groups < 1:
		return fmt.Errorf("%w: %d groups", ErrConfig, c.Groups)
	case c.Groups > 1 && !strings.Contains(c.Workload, GroupPlaceholder):
		return fmt.Errorf("%w: %d groups share workload %q: put %s in its name, one workload per group", ErrConfig, c.Groups, c.Workload, GroupPlaceholder)
	}
	return nil
}

// Provider scales the executor workloads. Safe for concurrent use.
type Provider struct {
	cfg    Config
	scales scaleClient
	logger hclog.Logger
}

// scaleClient reads and updates the scale subresource of a workload
// (resource "deployments" or "statefulsets" of apps/v1).
type scaleClient interface {
	GetScale(ctx context.Context, resource, namespace, name string) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, resource, namespace, name string, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
}

// restScales is the scaleClient on the API: a REST client of apps/v1 whose
// scheme knows only autoscaling/v1's Scale and the API's Status, rather
// than client-go's typed clientset, whose scheme links every built-in
// API group into the binary.
type restScales struct{ c *rest.RESTClient }

func newRESTScales(rc *rest.Config) (*restScales, error) {
	sch := runtime.NewScheme()
	if err := autoscalingv1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("%w: scheme: %v", ErrConfig, err)
	}
	metav1.AddToGroupVersion(sch, schema.GroupVersion{Version: "v1"})
	c := rest.CopyConfig(rc)
	c.GroupVersion = &schema.GroupVersion{Group: "apps", Version: "v1"}
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(sch).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = "qledger-autoscaler"
	}
	rcl, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("%w: client: %v", ErrConfig, err)
	}
	return &restScales{c: rcl}, nil
}

func (r *restScales) GetScale(ctx context.Context, resource, namespace, name string) (*autoscalingv1.Scale, error) {
	out := &autoscalingv1.Scale{}
	err := r.c.Get().Namespace(namespace).Resource(resource).Name(name).SubResource("scale").Do(ctx).Into(out)
	return out, err
}

func (r *restScales) UpdateScale(ctx context.Context, resource, namespace, name string, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	out := &autoscalingv1.Scale{}
	err := r.c.Put().Namespace(namespace).Resource(resource).Name(name).SubResource("scale").Body(s).Do(ctx).Into(out)
	return out, err
}

// New returns a provider that reaches the API with the in-cluster
// configuration, or with cfg.Kubeconfig if set.
func New(cfg Config, logger hclog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	scales, err := newRESTScales(rc)
	if err != nil {
		return nil, err
	}
	return newProvider(cfg, scales, logger)
}

// restConfig is the kubeconfig file's configuration, or the pod's.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("%w: kubeconfig %s: %v", ErrConfig, kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: not in a Kubernetes pod (give a kubeconfig): %v", ErrConfig, err)
	}
	return rc, nil
}

// newProvider returns a provider on scales (an adapter over client-go's
// fake clientset in tests).
func newProvider(cfg Config, scales scaleClient, logger hclog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == "" {
		cfg.Kind = KindDeployment
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Provider{cfg: cfg, scales: scales, logger: logger.Named("kubernetes")}, nil
}

// Workload returns the name of group's executor workload.
func (p *Provider) Workload(group int) string {
	return strings.ReplaceAll(p.cfg.Workload, GroupPlaceholder, strconv.Itoa(group))
}

// Executors returns the replicas group's workload asks for (its scale's
// spec: pods Kubernetes is starting count, pods it is stopping do not).
func (p *Provider) Executors(ctx context.Context, group int) (int, error) {
	s, err := p.getScale(ctx, group)
	if err != nil {
		return 0, err
	}
	return int(s.Spec.Replicas), nil
}

// SetExecutors sets the replicas of group's workload to k and returns
// the count the API accepted. A concurrent change (a conflict) is
// reported, not retried: the next decision reads the count again.
func (p *Provider) SetExecutors(ctx context.Context, group, k int) (int, error) {
	if k < 0 {
		return 0, fmt.Errorf("%w: %d replicas", ErrConfig, k)
	}
	s, err := p.getScale(ctx, group)
	if err != nil {
		return 0, err
	}
	cur := int(s.Spec.Replicas)
	if cur == k {
		return k, nil
	}
	s.Spec.Replicas = int32(k)
	got, err := p.updateScale(ctx, group, s)
	if err != nil {
		return cur, err
	}
	p.logger.Info("executor replicas set", "kind", p.cfg.Kind, "namespace", p.cfg.Namespace, "name", p.Workload(group), "from", cur, "to", got.Spec.Replicas)
	return int(got.Spec.Replicas), nil
}

// resource is the API resource of the workload kind.
func (p *Provider) resource() string {
	if p.cfg.Kind == KindStatefulSet {
		return "statefulsets"
	}
	return "deployments"
}

func (p *Provider) getScale(ctx context.Context, group int) (*autoscalingv1.Scale, error) {
	name := p.Workload(group)
	s, err := p.scales.GetScale(ctx, p.resource(), p.cfg.Namespace, name)
	if err != nil {
		return nil, fmt.Errorf("%w: get scale of %s %s/%s: %v", ErrAPI, p.cfg.Kind, p.cfg.Namespace, name, err)
	}
	return s, nil
}

func (p *Provider) updateScale(ctx context.Context, group int, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	name := p.Workload(group)
	got, err := p.scales.UpdateScale(ctx, p.resource(), p.cfg.Namespace, name, s)
	if err != nil {
		return nil, fmt.Errorf("%w: update scale of %s %s/%s to %d: %v", ErrAPI, p.cfg.Kind, p.cfg.Namespace, name, s.Spec.Replicas, err)
	}
	return got, nil
}
