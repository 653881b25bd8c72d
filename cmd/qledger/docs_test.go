package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestDocumentedCommandLinesParse parses every qledger command line in the
// code blocks of README.md and docs/*.md with the command tree: each must
// name an existing command and pass its flag and argument checks, so the
// docs cannot drift from the CLI.
func TestDocumentedCommandLinesParse(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	n := 0
	for _, f := range files {
		for _, line := range documentedCommands(t, f) {
			root := (&app{}).rootCmd()
			args := placeholders(root, shellWords(placeholder.ReplaceAllString(line, "X")))
			if len(args) == 0 || strings.HasPrefix(args[0], ".") {
				continue // go build -o bin/qledger ./cmd/qledger
			}
			n++
			cmd, rest, err := root.Find(goStyleFlags(root, args))
			if err == nil {
				err = cmd.ParseFlags(rest)
			}
			if err == nil {
				err = cmd.ValidateArgs(cmd.Flags().Args())
			}
			if err != nil || cmd == root {
				t.Errorf("%s: qledger %s: %v", filepath.Base(f), line, err)
			}
		}
	}
	if n < 40 {
		t.Fatalf("found %d documented command lines; the extraction is broken", n)
	}
}

var (
	invocation  = regexp.MustCompile(`(?:^|\s|/)qledger (\S.*)`)
	placeholder = regexp.MustCompile(`<[^>]*>`)
)

// placeholders resolves the docs' "..." elisions: one that stands for a
// flag's value becomes a value, any other is dropped.
func placeholders(root *cobra.Command, words []string) []string {
	cmd := root
	var out []string
	for i, w := range words {
		if sub := subcommand(cmd, w); sub != nil && len(out) == i {
			cmd = sub
		}
		if w != "..." {
			out = append(out, w)
			continue
		}
		if i > 0 && strings.HasPrefix(words[i-1], "-") && !strings.Contains(words[i-1], "=") {
			if f := lookupFlag(cmd, strings.TrimLeft(words[i-1], "-")); f != nil && f.NoOptDefVal == "" {
				out = append(out, "X")
			}
		}
	}
	return out
}

// documentedCommands returns what follows "qledger " on each line of
// path's code blocks, with continuation lines joined.
func documentedCommands(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(string(b), "\n")
	inBlock := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
			continue
		}
		m := invocation.FindStringSubmatch(l)
		if !inBlock || m == nil || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		full := m[1]
		for strings.HasSuffix(strings.TrimSpace(full), `\`) && i+1 < len(lines) {
			i++
			full = strings.TrimSuffix(strings.TrimSpace(full), `\`) + " " + strings.TrimSpace(lines[i])
		}
		out = append(out, full)
	}
	return out
}

// shellWords splits a documented command line as a shell would, for the
// quoting the docs use, and stops at a comment, "&" or "&&".
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case (r == '#' || r == '&') && !inWord:
			return words
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return words
}
