package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses of qledger.
const (
	exitOK      = 0 // the command did what it was asked
	exitFailure = 1 // the command ran and failed (a refused request, a failed check)
	exitUsage   = 2 // the command line is wrong: see usageError
)

// app is what every command shares: the streams, the version, and the
// options the persistent flags fill in. One app serves one run.
type app struct {
	version string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	client  clientOptions
	out     output
}

// runCLI runs the qledger command line args (without the program name)
// and returns its exit status.
func runCLI(version string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{version: version, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(goStyleFlags(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	switch {
	case err == nil:
		return exitOK
	case isUsage(err) || !cmd.Runnable() || strings.HasPrefix(err.Error(), "unknown command"):
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "qledger:", msg)
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	default:
		fmt.Fprintln(stderr, "qledger:", err)
		return exitFailure
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "qledger",
		Short: "Run qledger nodes and talk to them",
		Long: `qledger runs the nodes of a Raft-replicated permissioned ledger and talks to
them: transactions, chains, membership, verified WebAssembly functions,
confidential data shared across groups, QKD-keyed sessions and audits.

Every flag also takes the Go-style single dash (-groups 2). Flags that name
an environment variable (QLEDGER_*) fall back to it when not given.

Exit status: 0 success, 1 the command failed, 2 the command line is wrong
(unknown command or flag, bad flag value, missing required flag or argument).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(a.stderr, cmd.UsageString())
			return &usageError{}
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			return a.out.resolve(cmd.Flags())
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	root.AddCommand(
		a.nodeCmd(), a.devCmd(), a.demoCmd(), a.txCmd(), a.chainCmd(), a.clusterCmd(), a.qkdCmd(),
		a.fnCmd(), a.dataCmd(), a.benchCmd(), a.auditCmd(), a.explorerCmd(), a.caCmd(), a.snapshotCmd(), a.keygenCmd(), a.versionCmd(),
	)
	return root
}

// group is a command that only holds subcommands: run alone or with an
// unknown subcommand, it is a usage error listing them.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, Args: noArgs}
	g.AddCommand(subs...)
	g.RunE = func(cmd *cobra.Command, _ []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		return usageErrorf("usage: %s %s", cmd.CommandPath(), strings.Join(names, "|"))
	}
	return g
}

// noArgs refuses any argument, suggesting a subcommand for a misspelt one.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &usageError{msg: msg}
}

// argsUsage accepts between min and max arguments (max < 0: no limit) and
// otherwise is the usage error msg.
func argsUsage(min, max int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return &usageError{msg: msg}
		}
		return nil
	}
}

// goStyleFlags rewrites the Go-style single-dash long flags that
// qledger's earlier flag package accepted (-groups 2, -json) to the
// double-dash form pflag parses. Only names that are flags of the command
// being run are rewritten; flag values, arguments and everything after
// "--" are left alone.
func goStyleFlags(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cur, descend := root, true
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			if sub := subcommand(cur, arg); descend && sub != nil {
				cur = sub
			} else {
				descend = false
			}
			out = append(out, arg)
			continue
		}
		long := strings.HasPrefix(arg, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !long && name == "help" {
			arg, long = "--help", true
		}
		f := lookupFlag(cur, name)
		if f != nil && !long && f.Shorthand != name {
			arg = "-" + arg
		}
		out = append(out, arg)
		if f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i]) // the flag's value, whatever it looks like
		}
	}
	return out
}

// subcommand is cmd's subcommand called name (or one of its aliases).
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

// lookupFlag finds the flag name among cmd's own and inherited flags.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()} {
		if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}
