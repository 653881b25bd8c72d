package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// A node's configuration file is YAML: one key per flag of qledger node,
// named as the flag (data, groups, bind, gossip-key, join, ...), so that
// the file, the flags and the QLEDGER_* variables can never describe
// different settings. YAML because the deployment files beside it
// (compose, Kubernetes) are YAML too, and one small parser with line
// numbers serves both (README, "Running real nodes", says why not HCL or
// TOML).
//
// Precedence: a flag on the command line, then its environment variable,
// then the file, then the default.

// listAnnotation marks a string flag that holds a comma-separated list;
// in a configuration file it may be a YAML sequence.
const listAnnotation = "qledger_list"

// secretAnnotation marks a flag whose value --print-config does not show.
const secretAnnotation = "qledger_secret"

// notInFile are the flags of qledger node that a configuration file
// cannot set.
var notInFile = map[string]bool{"config": true, "print-config": true, "help": true}

// errConfigFile is any problem with a configuration file.
var errConfigFile = errors.New("configuration file")

// markList and markSecret annotate the flag name of fs.
func markList(fs *pflag.FlagSet, name string) {
	_ = fs.SetAnnotation(name, listAnnotation, []string{"1"})
}
func markSecret(fs *pflag.FlagSet, name string) {
	_ = fs.SetAnnotation(name, secretAnnotation, []string{"1"})
}

// applyConfigFile sets every flag of fs that is neither on the command
// line nor in the environment from the YAML file at path. An unknown key,
// a repeated key, a value of the wrong YAML type or one the flag refuses
// is an error naming the file and line, and the command must not run.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", errConfigFile, err)
	}
	settings, err := parseConfig(fs, path, b)
	if err != nil {
		return err
	}
	for _, s := range settings {
		if fs.Lookup(s.name).Changed {
			continue // the command line or the environment wins
		}
		if err := fs.Set(s.name, s.value); err != nil {
			return fmt.Errorf("%w: %s:%d: %s: %v", errConfigFile, path, s.line, s.name, err)
		}
	}
	return nil
}

// setting is one key of a configuration file, its value as the flag's
// text.
type setting struct {
	name, value string
	line        int
}

// parseConfig checks the whole file against the flags of fs and returns
// its settings in file order.
func parseConfig(fs *pflag.FlagSet, path string, b []byte) ([]setting, error) {
	fail := func(line int, format string, a ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", errConfigFile, path, line, fmt.Sprintf(format, a...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errConfigFile, path, err)
	}
	if doc.Kind == 0 {
		return nil, nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "want a mapping of setting: value")
	}
	var out []setting
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		f := fs.Lookup(k.Value)
		if k.Kind != yaml.ScalarNode || f == nil || notInFile[k.Value] {
			return nil, fail(k.Line, "unknown setting %q%s", k.Value, suggestFlag(fs, k.Value))
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fail(k.Line, "%s is set twice (first on line %d)", k.Value, first)
		}
		seen[k.Value] = k.Line
		value, err := flagText(f, v)
		if err != nil {
			return nil, fail(v.Line, "%s: %v", k.Value, err)
		}
		out = append(out, setting{name: k.Value, value: value, line: v.Line})
	}
	return out, nil
}

// flagText is the YAML value v as the text flag f parses, refusing a
// value of the wrong YAML type.
func flagText(f *pflag.Flag, v *yaml.Node) (string, error) {
	if v.Kind == yaml.SequenceNode && f.Annotations[listAnnotation] != nil {
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.Tag != "!!str" {
				return "", fmt.Errorf("want a list of strings, found %s on line %d", yamlKind(it), it.Line)
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", fmt.Errorf("want %s, found %s", flagKind(f), yamlKind(v))
	}
	want := map[string][]string{
		"bool": {"!!bool"}, "int": {"!!int"}, "uint": {"!!int"}, "float64": {"!!float", "!!int"},
	}[f.Value.Type()]
	if want == nil {
		want = []string{"!!str"}
	}
	for _, tag := range want {
		if v.Tag == tag {
			return v.Value, nil
		}
	}
	return "", fmt.Errorf("want %s, found %s %q", flagKind(f), yamlKind(v), v.Value)
}

// flagKind names the YAML value flag f takes.
func flagKind(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		return "true or false"
	case "int", "uint":
		return "an integer"
	case "float64":
		return "a number"
	case "duration":
		return "a duration string such as \"5s\""
	}
	if f.Annotations[listAnnotation] != nil {
		return "a string or a list of strings"
	}
	return "a string"
}

// yamlKind names what a YAML node holds.
func yamlKind(v *yaml.Node) string {
	switch v.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return map[string]string{"!!null": "nothing", "!!bool": "a boolean", "!!int": "an integer", "!!float": "a number", "!!str": "a string"}[v.Tag]
}

// suggestFlag is ` (did you mean "x"?)` for a near flag name, or "".
func suggestFlag(fs *pflag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD && !notInFile[f.Name] {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// effectiveConfig renders every setting of fs as a configuration file
// that applyConfigFile reads back to the same values; secrets are left
// out and named in a comment.
func effectiveConfig(fs *pflag.FlagSet) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	var hidden []string
	fs.VisitAll(func(f *pflag.Flag) {
		if notInFile[f.Name] {
			return
		}
		if f.Annotations[secretAnnotation] != nil {
			if f.Value.String() != "" {
				hidden = append(hidden, f.Name)
			}
			return
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}, valueNode(f))
	})
	if len(hidden) > 0 {
		root.HeadComment = "set but not shown: " + strings.Join(hidden, ", ")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// valueNode is flag f's current value as the YAML node flagText accepts.
func valueNode(f *pflag.Flag) *yaml.Node {
	v := f.Value.String()
	if f.Annotations[listAnnotation] != nil {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, item := range splitList(v) {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: item})
		}
		return seq
	}
	tag := map[string]string{"bool": "!!bool", "int": "!!int", "uint": "!!int", "float64": "!!float"}[f.Value.Type()]
	if tag == "" {
		tag = "!!str"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}
