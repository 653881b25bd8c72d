package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// The deployment files in deploy/ are checked here, where qledger node's
// flags and configuration parser live: each is decoded strictly (unknown
// fields are errors), into local types that mirror the fields of the real
// schemas it uses (compose; the voters' Kubernetes objects) or into the
// real Kubernetes types of k8s.io/api (the executors' objects and the
// RBAC, since the kubernetes provider brings that module anyway), and
// cross-checked against qledger itself.

const deployDir = "../../deploy"

// strictYAML decodes one YAML document into v, refusing unknown fields.
func strictYAML(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// nodeEnvVars are the environment variables qledger node reads.
func nodeEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	node := subcommand((&app{}).rootCmd(), "node")
	node.Flags().VisitAll(func(f *pflag.Flag) {
		if env := f.Annotations[envAnnotation]; len(env) > 0 {
			vars[env[0]] = true
		}
	})
	return vars
}

// checkNodeConfig parses a node configuration file as qledger node does,
// with the given environment, and returns the effective settings.
func checkNodeConfig(t *testing.T, name string, text []byte, env map[string]string) map[string]any {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "node", "--config", path, "--print-config")
	if r.code != exitOK {
		t.Fatalf("%s does not parse as a node configuration: %s", name, r.stderr)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatal(err)
	}
	for k := range env {
		os.Unsetenv(k)
	}
	return m
}

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]*struct{}      `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	User        string            `yaml:"user"`
	Hostname    string            `yaml:"hostname"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Restart     string            `yaml:"restart"`
}

// TestComposeFile decodes deploy/compose.yaml strictly and checks that
// it builds from files that exist, mounts the configuration file that
// qledger node parses, sets only variables qledger reads, gives every
// node its own name, certificate and data volume, and declares its
// volumes.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Resolve anchors and merge keys, then drop the x- keys (compose
	// extensions holding the anchors) before the strict decoding.
	var resolved map[string]any
	if err := yaml.Unmarshal(b, &resolved); err != nil {
		t.Fatal(err)
	}
	for k := range resolved {
		if strings.HasPrefix(k, "x-") {
			delete(resolved, k)
		}
	}
	doc, err := yaml.Marshal(resolved)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	strictYAML(t, "compose.yaml", doc, &c)
	vars := nodeEnvVars(t)
	nodes := 0
	for name, s := range c.Services {
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s builds from a missing Dockerfile: %v", name, err)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(deployDir, src)); err != nil {
					t.Errorf("service %s mounts a missing file: %v", name, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts undeclared volume %q", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %q", name, dep)
			}
		}
		if len(s.Environment) == 0 {
			continue
		}
		nodes++
		for k := range s.Environment {
			if !vars[k] {
				t.Errorf("service %s sets %s, which qledger node does not read", name, k)
			}
		}
		if !strings.HasPrefix(s.Environment["QLEDGER_ADVERTISE"], s.Hostname+":") || !strings.Contains(s.Environment["QLEDGER_CERT"], "/"+s.Hostname+".pem") {
			t.Errorf("service %s: advertise %q and certificate %q do not name the node %q", name, s.Environment["QLEDGER_ADVERTISE"], s.Environment["QLEDGER_CERT"], s.Hostname)
		}
		if !slices.Contains(s.Volumes, name+"-data:/var/lib/qledger") {
			t.Errorf("service %s has no data volume of its own: %v", name, s.Volumes)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = v
		}
		env["QLEDGER_GOSSIP_KEY"] = "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="
		cfg, err := os.ReadFile(filepath.Join(deployDir, "config", "node.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		got := checkNodeConfig(t, "config/node.yaml with "+name+"'s environment", cfg, env)
		if got["advertise"] != s.Hostname+":7000" || got["bootstrap-expect"] != 3 {
			t.Errorf("service %s: effective advertise %v, bootstrap-expect %v", name, got["advertise"], got["bootstrap-expect"])
		}
	}
	if nodes != 3 {
		t.Fatalf("%d node services, want 3", nodes)
	}
}

type k8sMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type k8sObject struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
}

type k8sConfigMap struct {
	k8sObject `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

type k8sPort struct {
	Name          string `yaml:"name"`
	Port          int    `yaml:"port"`
	ContainerPort int    `yaml:"containerPort"`
	TargetPort    string `yaml:"targetPort"`
	Protocol      string `yaml:"protocol"`
}

type k8sService struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []k8sPort         `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sPDB struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		MaxUnavailable int         `yaml:"maxUnavailable"`
		Selector       k8sSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sContainer struct {
	Name            string    `yaml:"name"`
	Image           string    `yaml:"image"`
	Args            []string  `yaml:"args"`
	Env             []k8sEnv  `yaml:"env"`
	Ports           []k8sPort `yaml:"ports"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sStatefulSet struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		ServiceName         string      `yaml:"serviceName"`
		Replicas            int         `yaml:"replicas"`
		PodManagementPolicy string      `yaml:"podManagementPolicy"`
		Selector            k8sSelector `yaml:"selector"`
		Template            struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				ServiceAccountName            string `yaml:"serviceAccountName"`
				TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					RunAsGroup   int  `yaml:"runAsGroup"`
					FSGroup      int  `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName  string `yaml:"secretName"`
						DefaultMode int    `yaml:"defaultMode"`
					} `yaml:"secret"`
					EmptyDir *struct{} `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string `yaml:"accessModes"`
				Resources   struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

// TestKubernetesManifests decodes every object of deploy/kubernetes
// strictly by kind and checks that they fit together: the StatefulSet's
// headless Service publishes unready peers, selectors match the pod
// labels, probes reach /readyz and /healthz on a declared port, every
// mount has a volume, the PodDisruptionBudget keeps a quorum, the
// variables are ones qledger reads, and the ConfigMap's node.yaml parses
// with qledger node --config.
func TestKubernetesManifests(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "qledger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		cms  []k8sConfigMap
		svcs []k8sService
		pdbs []k8sPDB
		sts  []k8sStatefulSet

		sas      []corev1.ServiceAccount
		roles    []rbacv1.Role
		bindings []rbacv1.RoleBinding
	)
	for i, doc := range splitYAML(t, b) {
		var o k8sObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		name := o.Kind + " " + o.Metadata.Name
		switch want := map[string]string{"ConfigMap": "v1", "Service": "v1", "PodDisruptionBudget": "policy/v1", "StatefulSet": "apps/v1",
			"ServiceAccount": "v1", "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1"}[o.Kind]; {
		case want == "":
			t.Fatalf("document %d: unexpected kind %q", i, o.Kind)
		case want != o.APIVersion:
			t.Fatalf("%s: apiVersion %q, want %q", name, o.APIVersion, want)
		}
		switch o.Kind {
		case "ConfigMap":
			cms = append(cms, k8sConfigMap{})
			strictYAML(t, name, doc, &cms[len(cms)-1])
		case "Service":
			svcs = append(svcs, k8sService{})
			strictYAML(t, name, doc, &svcs[len(svcs)-1])
		case "PodDisruptionBudget":
			pdbs = append(pdbs, k8sPDB{})
			strictYAML(t, name, doc, &pdbs[len(pdbs)-1])
		case "StatefulSet":
			sts = append(sts, k8sStatefulSet{})
			strictYAML(t, name, doc, &sts[len(sts)-1])
		case "ServiceAccount":
			sas = append(sas, corev1.ServiceAccount{})
			strictK8s(t, name, doc, &sas[len(sas)-1])
		case "Role":
			roles = append(roles, rbacv1.Role{})
			strictK8s(t, name, doc, &roles[len(roles)-1])
		case "RoleBinding":
			bindings = append(bindings, rbacv1.RoleBinding{})
			strictK8s(t, name, doc, &bindings[len(bindings)-1])
		}
	}
	if len(sas) != 1 || len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("%d ServiceAccounts, %d Roles, %d RoleBindings; want one each", len(sas), len(roles), len(bindings))
	}
	if len(sts) != 1 || len(cms) != 1 || len(pdbs) != 1 {
		t.Fatalf("%d StatefulSets, %d ConfigMaps, %d PodDisruptionBudgets; want one each", len(sts), len(cms), len(pdbs))
	}
	ss, cm, pdb := sts[0].Spec, cms[0], pdbs[0].Spec
	labels := ss.Template.Metadata.Labels
	if !subset(ss.Selector.MatchLabels, labels) || !subset(pdb.Selector.MatchLabels, labels) {
		t.Fatal("the StatefulSet's or the PodDisruptionBudget's selector does not match the pod labels")
	}
	if quorum := ss.Replicas/2 + 1; ss.Replicas-pdb.MaxUnavailable < quorum {
		t.Fatalf("the PodDisruptionBudget lets %d of %d voters go, below a quorum of %d", pdb.MaxUnavailable, ss.Replicas, quorum)
	}
	headless := false
	for _, s := range svcs {
		if !subset(s.Spec.Selector, labels) {
			t.Errorf("Service %s selects no pod", s.Metadata.Name)
		}
		if s.Metadata.Name == ss.ServiceName {
			headless = s.Spec.ClusterIP == "None" && s.Spec.PublishNotReadyAddresses
		}
	}
	if !headless {
		t.Fatalf("the StatefulSet's service %q is not a headless Service publishing unready pods", ss.ServiceName)
	}
	if len(ss.Template.Spec.Containers) != 1 {
		t.Fatal("want one container")
	}
	c := ss.Template.Spec.Containers[0]
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for path, p := range map[string]*k8sProbe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet.Path != path || !ports[p.HTTPGet.Port] || p.HTTPGet.Scheme != "HTTPS" {
			t.Errorf("no HTTPS probe of %s on a declared port: %+v", path, p)
		}
	}
	volumes := map[string]bool{"data": len(ss.VolumeClaimTemplates) == 1 && ss.VolumeClaimTemplates[0].Metadata.Name == "data"}
	for _, v := range ss.Template.Spec.Volumes {
		volumes[v.Name] = true
		if v.ConfigMap != nil && v.ConfigMap.Name != cm.Metadata.Name {
			t.Errorf("volume %s names ConfigMap %q, not %q", v.Name, v.ConfigMap.Name, cm.Metadata.Name)
		}
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("mount %s has no volume", m.Name)
		}
	}
	vars := nodeEnvVars(t)
	env := map[string]string{"QLEDGER_GOSSIP_KEY": "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "QLEDGER_") && !vars[e.Name] {
			t.Errorf("the container sets %s, which qledger node does not read", e.Name)
		}
		if e.Value != "" {
			env[e.Name] = strings.ReplaceAll(e.Value, "$(POD_NAME)", "qledger-0")
		}
	}
	delete(env, "POD_NAME")
	got := checkNodeConfig(t, "the ConfigMap's node.yaml", []byte(cm.Data["node.yaml"]), env)
	if got["advertise"] != "qledger-0.qledger.qledger.svc.cluster.local:7000" || got["cert"] != "/etc/qledger/tls/qledger-0.pem" {
		t.Fatalf("effective configuration of qledger-0: advertise %v, cert %v", got["advertise"], got["cert"])
	}
	checkScalerRBAC(t, got, ss.Template.Spec.ServiceAccountName, sas[0], roles[0], bindings[0])
}

// checkScalerRBAC: the voters run the autoscaler with the kubernetes
// provider under service account account, which is bound to a Role that
// grants the provider's verbs (get and update of the scale subresource;
// patch for kubectl-style tools) on the named executor Deployment and
// nothing else.
func checkScalerRBAC(t *testing.T, cfg map[string]any, account string, sa corev1.ServiceAccount, role rbacv1.Role, rb rbacv1.RoleBinding) {
	t.Helper()
	if cfg["autoscale"] != true || cfg["autoscale-provider"] != "kubernetes" {
		t.Fatalf("the voters do not run the autoscaler with the kubernetes provider: autoscale %v, provider %v", cfg["autoscale"], cfg["autoscale-provider"])
	}
	deployment, _ := cfg["autoscale-k8s-deployment"].(string)
	if account == "" || account != sa.Name {
		t.Fatalf("the StatefulSet runs as service account %q, not %q", account, sa.Name)
	}
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != sa.Namespace {
		t.Fatalf("RoleBinding %s does not bind Role %s to service account %s/%s: %+v", rb.Name, role.Name, sa.Namespace, sa.Name, rb)
	}
	if len(role.Rules) != 1 {
		t.Fatalf("Role %s has %d rules, want 1", role.Name, len(role.Rules))
	}
	r := role.Rules[0]
	if !slices.Equal(r.APIGroups, []string{"apps"}) || !slices.Equal(r.Resources, []string{"deployments/scale"}) || !slices.Equal(r.ResourceNames, []string{deployment}) {
		t.Fatalf("Role %s grants %v %v %v, want only apps deployments/scale of %q", role.Name, r.APIGroups, r.Resources, r.ResourceNames, deployment)
	}
	verbs := slices.Sorted(slices.Values(r.Verbs))
	if !slices.Equal(verbs, []string{"get", "patch", "update"}) {
		t.Fatalf("Role %s grants verbs %v, want get, patch and update", role.Name, verbs)
	}
}

// strictK8s decodes one manifest document into a k8s.io/api type,
// refusing unknown and duplicate fields as the API server's strict field
// validation does.
func strictK8s(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	if err := sigsyaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// splitYAML splits a multi-document YAML file.
func splitYAML(t *testing.T, b []byte) [][]byte {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, out)
	}
}

// TestSystemdUnit checks deploy/qledger.service with systemd-analyze
// verify where it is installed (any warning fails), and in any case that
// it runs qledger node with a configuration file, reloads with SIGHUP and
// keeps its hardening.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "qledger.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"ExecStart=/usr/local/bin/qledger node --config /etc/qledger/node.yaml", "ExecReload=/bin/kill -HUP $MAINPID",
		"User=qledger", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=qledger", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	// verify wants the binary to exist: point the unit at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qledger.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/qledger", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfile checks what the image promises: a multi-stage static
// build, a non-root user, a data volume and a health check on /readyz.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^FROM \S+ AS build$`, `CGO_ENABLED=0 go build`, `(?m)^COPY --from=build `, `(?m)^USER 10001`,
		`(?m)^VOLUME \["/var/lib/qledger"\]`, `(?m)^HEALTHCHECK .*\n.*/readyz`, `(?m)^ENTRYPOINT \["/usr/local/bin/qledger", "node"\]`} {
		if !regexp.MustCompile(re).Match(b) {
			t.Errorf("the Dockerfile does not match %s", re)
		}
	}
}

// TestKubernetesExecutors decodes deploy/kubernetes/executors.yaml into
// the real Kubernetes types and checks it against the voters' manifest
// and qledger itself: the Deployment is the one the voters' autoscaler
// scales and the Role names, starts at 0 replicas, has no API access, its
// selector matches its pods, every mount has a volume; the init
// container's command issues a node certificate in group 0 with this
// qledger (run here against a fresh CA) where the node's configuration
// looks for it; the node configuration parses as an executor's; and the
// pod's shutdown is the graceful leave: no preStop hook that could cut
// it, a grace period at least as long as the process provider's.
func TestKubernetesExecutors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "executors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		cms  []corev1.ConfigMap
		sas  []corev1.ServiceAccount
		deps []appsv1.Deployment
	)
	for i, doc := range splitYAML(t, b) {
		var o k8sObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		name := o.Kind + " " + o.Metadata.Name
		if o.Metadata.Namespace != "qledger" {
			t.Errorf("%s: namespace %q, not qledger", name, o.Metadata.Namespace)
		}
		switch o.APIVersion + " " + o.Kind {
		case "v1 ConfigMap":
			cms = append(cms, corev1.ConfigMap{})
			strictK8s(t, name, doc, &cms[len(cms)-1])
		case "v1 ServiceAccount":
			sas = append(sas, corev1.ServiceAccount{})
			strictK8s(t, name, doc, &sas[len(sas)-1])
		case "apps/v1 Deployment":
			deps = append(deps, appsv1.Deployment{})
			strictK8s(t, name, doc, &deps[len(deps)-1])
		default:
			t.Fatalf("document %d: unexpected %s %s", i, o.APIVersion, o.Kind)
		}
	}
	if len(cms) != 1 || len(sas) != 1 || len(deps) != 1 {
		t.Fatalf("%d ConfigMaps, %d ServiceAccounts, %d Deployments; want one each", len(cms), len(sas), len(deps))
	}
	d, cm, sa := deps[0], cms[0], sas[0]
	voters := voterNodeConfig(t)
	if d.Name != voters["autoscale-k8s-deployment"] {
		t.Fatalf("Deployment %s is not the one the voters scale (%v)", d.Name, voters["autoscale-k8s-deployment"])
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Fatal("the executor Deployment must start at 0 replicas: the autoscaler owns the count")
	}
	pod := d.Spec.Template.Spec
	if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Fatal("the Deployment's selector does not match its pod labels")
	}
	if pod.ServiceAccountName != sa.Name || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken ||
		pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Fatal("executor pods must run as their own service account without an API token")
	}
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second < 30*time.Second {
		t.Fatal("the executors' grace period is shorter than the 30 s the process provider gives a leaving executor")
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers; want one each", len(pod.InitContainers), len(pod.Containers))
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			t.Errorf("container %s has a preStop hook: SIGTERM's graceful leave is the drain", c.Name)
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts %s, which has no volume", c.Name, m.Name)
			}
		}
	}
	main := pod.Containers[0]
	for _, m := range main.VolumeMounts {
		if m.Name == "ca-key" {
			t.Error("the node container mounts the CA key")
		}
	}
	cert := runInitContainer(t, pod.InitContainers[0])
	vars := nodeEnvVars(t)
	env := map[string]string{"QLEDGER_GOSSIP_KEY": "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="}
	for _, e := range main.Env {
		if strings.HasPrefix(e.Name, "QLEDGER_") && !vars[e.Name] {
			t.Errorf("the container sets %s, which qledger node does not read", e.Name)
		}
		if e.Value != "" {
			env[e.Name] = strings.ReplaceAll(e.Value, "$(POD_IP)", "10.1.2.3")
		}
	}
	got := checkNodeConfig(t, "the executors' node.yaml", []byte(cm.Data["node.yaml"]), env)
	if got["role"] != "executor" || got["advertise"] != "10.1.2.3:7000" || got["groups"] != voters["groups"] {
		t.Fatalf("effective executor configuration: role %v, advertise %v, groups %v (voters: %v)", got["role"], got["advertise"], got["groups"], voters["groups"])
	}
	if got["cert"] != cert || got["cert-key"] != strings.TrimSuffix(cert, ".pem")+"-key.pem" {
		t.Fatalf("the node reads certificate %v and key %v; the init container writes %s", got["cert"], got["cert-key"], cert)
	}
	if !slices.Equal(anyStrings(got["join"]), anyStrings(voters["join"])) {
		t.Fatalf("executors join %v, the voters are %v", got["join"], voters["join"])
	}
}

// voterNodeConfig is the effective configuration of the voters'
// ConfigMap (deploy/kubernetes/qledger.yaml).
func voterNodeConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "qledger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range splitYAML(t, b) {
		var cm k8sConfigMap
		if err := yaml.Unmarshal(doc, &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind == "ConfigMap" {
			return checkNodeConfig(t, "the voters' node.yaml", []byte(cm.Data["node.yaml"]), map[string]string{"QLEDGER_GOSSIP_KEY": "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="})
		}
	}
	t.Fatal("no ConfigMap in qledger.yaml")
	return nil
}

// runInitContainer runs the init container's `qledger ca issue` with this
// qledger, its CA directory being a fresh CA, and checks the certificate:
// a node certificate whose ID falls in group 0. It returns the path the
// container writes the certificate to.
func runInitContainer(t *testing.T, c corev1.Container) string {
	t.Helper()
	if len(c.Command) < 3 || filepath.Base(c.Command[0]) != "qledger" || c.Command[1] != "ca" || c.Command[2] != "issue" {
		t.Fatalf("init container %s runs %v, not qledger ca issue", c.Name, c.Command)
	}
	args := slices.Clone(c.Command[1:])
	fs := pflag.NewFlagSet("issue", pflag.ContinueOnError)
	dir, out, name := fs.String("dir", "", ""), fs.String("out", "", ""), fs.String("name", "", "")
	fs.ParseErrorsAllowlist.UnknownFlags = true
	if err := fs.Parse(args[2:]); err != nil {
		t.Fatal(err)
	}
	caDir, outDir := t.TempDir(), t.TempDir()
	if r := cli(t, "ca", "init", "--dir", caDir); r.code != exitOK {
		t.Fatal(r.stderr)
	}
	for i, a := range args {
		switch a {
		case *dir:
			args[i] = caDir
		case *out:
			args[i] = outDir
		case "$(POD_IP)":
			args[i] = "10.1.2.3"
		}
	}
	r := cli(t, args...)
	if r.code != exitOK {
		t.Fatalf("the init container's command fails: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "group 0 of 1") {
		t.Fatalf("the init container's certificate is not placed in group 0: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(outDir, *name+".pem")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(*out, *name+".pem")
}

func anyStrings(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, s := range v {
			out = append(out, fmt.Sprint(s))
		}
	case string:
		out = splitList(v)
	}
	return out
}
