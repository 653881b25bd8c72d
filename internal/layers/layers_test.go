package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pkg is what the rules need of one package: its direct (non-test) imports
// and every package it links, transitively.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// rule is one import rule. Subjects are the packages it applies to (match
// patterns, see match); Except are subjects it exempts. Forbidden patterns
// must not appear among a subject's direct imports, or, when Transitive is
// set, anywhere in what it links. OnlyStd forbids every non-standard package
// the subject links except the Allowed patterns.
type rule struct {
	Name       string
	Subjects   []string
	Except     []string
	Forbidden  []string
	Transitive bool
	OnlyStd    bool
	Allowed    []string
}

// The floors, bottom up: formats (internal/wire, chain, shard, election, function,
// execrecord), crypto and math libraries (pki, qkd, sharing), the runtime
// pieces (execute: wasm; fsm: the replicated state machine), cluster (raft
// and gossip), api and api/client, the autoscaler's kubernetes provider
// (scaler/kubernetes, the one home of client-go, imported by the node
// assembly only), then cmd and integration at the top.
//
// The top floor assembles the rest: the commands, the integration suite,
// server (a node process: cluster plus api), demo (the scenario qledger
// demo runs) and internal/bench (benchmarks, with a bare-raft baseline).
var top = []string{"qledger/cmd/...", "qledger/integration/...", "qledger/server", "qledger/demo", "qledger/internal/bench"}

var rules = []rule{
	{
		Name:      "only cluster and fsm import raft (and the bare-raft benchmark baseline)",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/cluster", "qledger/fsm", "qledger/internal/bench"},
		Forbidden: []string{"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/..."},
	},
	{
		Name:      "only api/contract links the OpenAPI validator (test builds only)",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/api/contract"},
		Forbidden: []string{"github.com/getkin/kin-openapi/..."},
	},
	{
		Name:       "the explorer links no server",
		Subjects:   []string{"qledger/explorer"},
		Transitive: true,
		Forbidden: []string{
			"qledger/api", "qledger/cluster", "qledger/fsm", "qledger/execute/...",
			"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "go.etcd.io/bbolt", "github.com/tetratelabs/wazero/...",
		},
	},
	{
		Name:       "the transparency formats link no node, store or server",
		Subjects:   []string{"qledger/transparency"},
		Transitive: true,
		Forbidden: []string{
			"qledger/api/...", "qledger/cluster", "qledger/fsm", "qledger/execute/...",
			"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "go.etcd.io/bbolt",
		},
	},
	{
		Name:      "only scaler/kubernetes imports the Kubernetes client",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/scaler/kubernetes"},
		Forbidden: []string{"k8s.io/...", "sigs.k8s.io/..."},
	},
	{
		Name:       "nothing below the top floor links the Kubernetes client",
		Subjects:   []string{"qledger/..."},
		Except:     append([]string{"qledger/scaler/kubernetes"}, top...),
		Transitive: true,
		Forbidden:  []string{"k8s.io/...", "sigs.k8s.io/...", "qledger/scaler/..."},
	},
	{
		Name:      "only the node assembly imports the kubernetes provider",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/server", "qledger/cmd/qledger"},
		Forbidden: []string{"qledger/scaler/..."},
	},
	{
		Name:      "only cluster speaks gossip",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/cluster"},
		Forbidden: []string{"github.com/hashicorp/memberlist"},
	},
	{
		Name:      "only fsm opens bbolt",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/fsm"},
		Forbidden: []string{"go.etcd.io/bbolt"},
	},
	{
		Name:      "only execute runs wasm",
		Subjects:  []string{"qledger/..."},
		Except:    []string{"qledger/execute/..."},
		Forbidden: []string{"github.com/tetratelabs/wazero/..."},
	},
	{
		Name:     "ledger formats rest on the standard library, internal/wire and each other",
		Subjects: []string{"qledger/internal/wire", "qledger/chain", "qledger/shard", "qledger/election", "qledger/function", "qledger/execrecord"},
		OnlyStd:  true,
		// The execution record holds hashes (chain), an election record
		// and call outcomes (function).
		Allowed: []string{"qledger/internal/wire", "qledger/chain", "qledger/election", "qledger/function"},
	},
	{
		Name:       "the state machine does not link the runtime, gossip or the network layer",
		Subjects:   []string{"qledger/fsm"},
		Transitive: true,
		Forbidden: []string{
			"qledger/execute/...", "github.com/tetratelabs/wazero/...",
			"qledger/cluster", "github.com/hashicorp/memberlist", "qledger/api/...",
		},
	},
	{
		Name:       "the client library links no server",
		Subjects:   []string{"qledger/api/client"},
		Transitive: true,
		Forbidden: []string{
			"qledger/api", "qledger/cluster", "qledger/fsm", "qledger/execute/...",
			"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "go.etcd.io/bbolt",
			"github.com/tetratelabs/wazero/...", "github.com/prometheus/...",
		},
	},
	{
		Name:      "nothing below the API imports it",
		Subjects:  []string{"qledger/..."},
		Except:    append([]string{"qledger/api/...", "qledger/internal/layers"}, top...),
		Forbidden: []string{"qledger/api"},
	},
	{
		Name:      "nothing below the top floor imports it",
		Subjects:  []string{"qledger/..."},
		Except:    top,
		Forbidden: top,
	},
	{
		Name:      "only the API and the top floor drive a node",
		Subjects:  []string{"qledger/..."},
		Except:    append([]string{"qledger/api", "qledger/cluster"}, top...),
		Forbidden: []string{"qledger/cluster"},
	},
}

// match reports whether path matches pattern: exactly, or, for a pattern
// ending in "/...", the prefix itself or anything below it.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if match(p, path) {
			return true
		}
	}
	return false
}

// std reports whether an import path is the standard library's (no dot in
// its first element), as the go command decides it.
func std(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && first != "qledger"
}

// violations lists every broken rule as "package: rule: import".
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !matchAny(r.Subjects, p.ImportPath) || matchAny(r.Except, p.ImportPath) {
				continue
			}
			seen := p.Imports
			if r.Transitive || r.OnlyStd {
				seen = p.Deps
			}
			for _, imp := range seen {
				bad := matchAny(r.Forbidden, imp)
				if r.OnlyStd && !std(imp) && !matchAny(r.Allowed, imp) {
					bad = true
				}
				if bad && imp != p.ImportPath {
					out = append(out, fmt.Sprintf("%s: %s: %s", p.ImportPath, r.Name, imp))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// goList loads every package of the module with `go list -json`.
func goList(t *testing.T) []pkg {
	t.Helper()
	// go test puts its own go command first on PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-json", "qledger/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages: the module was not listed", len(pkgs))
	}
	return pkgs
}

// readSources opens go.mod, go.sum and every Go file of the module, so the
// go command's test cache keys this test on them: the import graph comes
// from a 'go list' subprocess, which the cache cannot see.
func readSources(t *testing.T) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading the module's sources: %v", err)
	}
}

func TestImportRules(t *testing.T) {
	readSources(t)
	pkgs := goList(t)
	known := map[string]bool{}
	for _, p := range pkgs {
		known[p.ImportPath] = true
	}
	// A rule about a package that no longer exists guards nothing.
	for _, r := range rules {
		for _, s := range append(append([]string{}, r.Subjects...), r.Except...) {
			found := false
			for path := range known {
				if match(s, path) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("rule %q names %s, which matches no package", r.Name, s)
			}
		}
	}
	for _, v := range violations(pkgs, rules) {
		t.Error(v)
	}
}

// TestRulesCatchViolations feeds the checker a graph that breaks each rule
// once, so a checker that silently passes everything fails here.
func TestRulesCatchViolations(t *testing.T) {
	graph := []pkg{
		{ImportPath: "qledger/api/client", Imports: []string{"qledger/chain"}, Deps: []string{"qledger/chain", "qledger/cluster", "github.com/hashicorp/raft"}},
		{ImportPath: "qledger/chain", Imports: []string{"crypto/sha256", "github.com/google/uuid"}, Deps: []string{"crypto/sha256", "github.com/google/uuid"}},
		{ImportPath: "qledger/fsm", Imports: []string{"qledger/execute", "github.com/hashicorp/raft"}, Deps: []string{"qledger/execute", "github.com/tetratelabs/wazero"}},
		{ImportPath: "qledger/sharing", Imports: []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "qledger/api", "qledger/cmd/qledger"}},
		{ImportPath: "qledger/pki", Imports: []string{"github.com/hashicorp/memberlist", "github.com/tetratelabs/wazero/api", "qledger/cluster"}},
		{ImportPath: "qledger/cluster", Imports: []string{"github.com/hashicorp/raft", "github.com/hashicorp/memberlist"}},
		{ImportPath: "qledger/api", Imports: []string{"github.com/getkin/kin-openapi/openapi3"}},
		{ImportPath: "qledger/explorer", Imports: []string{"qledger/api/client"}, Deps: []string{"qledger/api/client", "qledger/api"}},
		{ImportPath: "qledger/transparency", Imports: []string{"qledger/chain"}, Deps: []string{"qledger/chain", "qledger/fsm"}},
		{ImportPath: "qledger/demo", Imports: []string{"qledger/scaler/kubernetes", "k8s.io/client-go/kubernetes"}},
		{ImportPath: "qledger/execute", Imports: []string{"qledger/chain"}, Deps: []string{"qledger/chain", "k8s.io/apimachinery/pkg/runtime"}},
	}
	got := violations(graph, rules)
	want := []string{
		"qledger/api/client: the client library links no server: github.com/hashicorp/raft",
		"qledger/api/client: the client library links no server: qledger/cluster",
		"qledger/api: only api/contract links the OpenAPI validator (test builds only): github.com/getkin/kin-openapi/openapi3",
		"qledger/chain: ledger formats rest on the standard library, internal/wire and each other: github.com/google/uuid",
		"qledger/demo: only scaler/kubernetes imports the Kubernetes client: k8s.io/client-go/kubernetes",
		"qledger/demo: only the node assembly imports the kubernetes provider: qledger/scaler/kubernetes",
		"qledger/execute: nothing below the top floor links the Kubernetes client: k8s.io/apimachinery/pkg/runtime",
		"qledger/explorer: the explorer links no server: qledger/api",
		"qledger/fsm: the state machine does not link the runtime, gossip or the network layer: github.com/tetratelabs/wazero",
		"qledger/fsm: the state machine does not link the runtime, gossip or the network layer: qledger/execute",
		"qledger/pki: only cluster speaks gossip: github.com/hashicorp/memberlist",
		"qledger/pki: only execute runs wasm: github.com/tetratelabs/wazero/api",
		"qledger/pki: only the API and the top floor drive a node: qledger/cluster",
		"qledger/sharing: nothing below the API imports it: qledger/api",
		"qledger/sharing: nothing below the top floor imports it: qledger/cmd/qledger",
		"qledger/sharing: only cluster and fsm import raft (and the bare-raft benchmark baseline): github.com/hashicorp/raft",
		"qledger/sharing: only fsm opens bbolt: go.etcd.io/bbolt",
		"qledger/transparency: the transparency formats link no node, store or server: qledger/fsm",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
