// Package kubernetes is the autoscaler's `kubernetes` executor provider:
// each group's executors are the replicas of one Deployment (or
// StatefulSet), and the provider reads and sets that workload's replica
// count through the Kubernetes API's scale subresource
// (k8s.io/client-go). Kubernetes then starts and stops the executor pods;
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
	k8s "k8s.io/client-go/kubernetes"
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
	client k8s.Interface
	logger hclog.Logger
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
	client, err := k8s.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: client: %v", ErrConfig, err)
	}
	return NewWithClient(cfg, client, logger)
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

// NewWithClient returns a provider on client (a fake clientset in tests).
func NewWithClient(cfg Config, client k8s.Interface, logger hclog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == "" {
		cfg.Kind = KindDeployment
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Provider{cfg: cfg, client: client, logger: logger.Named("kubernetes")}, nil
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

func (p *Provider) getScale(ctx context.Context, group int) (*autoscalingv1.Scale, error) {
	name := p.Workload(group)
	var s *autoscalingv1.Scale
	var err error
	if p.cfg.Kind == KindStatefulSet {
		s, err = p.client.AppsV1().StatefulSets(p.cfg.Namespace).GetScale(ctx, name, metav1.GetOptions{})
	} else {
		s, err = p.client.AppsV1().Deployments(p.cfg.Namespace).GetScale(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: get scale of %s %s/%s: %v", ErrAPI, p.cfg.Kind, p.cfg.Namespace, name, err)
	}
	return s, nil
}

func (p *Provider) updateScale(ctx context.Context, group int, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	name := p.Workload(group)
	var got *autoscalingv1.Scale
	var err error
	if p.cfg.Kind == KindStatefulSet {
		got, err = p.client.AppsV1().StatefulSets(p.cfg.Namespace).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	} else {
		got, err = p.client.AppsV1().Deployments(p.cfg.Namespace).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: update scale of %s %s/%s to %d: %v", ErrAPI, p.cfg.Kind, p.cfg.Namespace, name, s.Spec.Replicas, err)
	}
	return got, nil
}
