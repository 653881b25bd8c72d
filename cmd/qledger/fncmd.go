package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
)

func (a *app) fnCmd() *cobra.Command {
	return a.clientGroup(group("fn", "deploy | invoke | ls | status: serverless functions run as verified contracts",
		a.fnDeployCmd(), a.fnInvokeCmd(), a.fnLsCmd(), a.fnStatusCmd()))
}

func (a *app) fnDeployCmd() *cobra.Command {
	var (
		req            client.DeployRequest
		pages, out     uint
		limit, request time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME MODULE.wasm",
		Short: "deploy a WebAssembly module to every group (admin)",
		Args:  argsUsage(2, 2, "usage: qledger fn deploy NAME MODULE.wasm [--version V --memory-pages N --timeout D]"),
		RunE: func(_ *cobra.Command, args []string) error {
			var err error
			req.Name = args[0]
			if req.Code, err = os.ReadFile(args[1]); err != nil {
				return err
			}
			req.MemoryPages, req.TimeoutMillis, req.MaxOutputBytes = uint32(pages), limit.Milliseconds(), uint32(out)
			a.client.timeout = request
			c, ctx, cancel, err := a.client.connect(4)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.Deploy(ctx, req)
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "deployed %s %s (code %s, %d bytes) to %d groups\n", res.Name, res.Version, short(res.CodeHash), len(req.Code), len(res.Receipts))
			return nil
		},
	}
	fs := cmd.Flags()
	// --timeout is the function's limit here; the request timeout is
	// --request-timeout.
	fs.DurationVar(&request, "request-timeout", 30*time.Second, "request timeout")
	fs.StringVar(&req.Version, "version", "1", "version label")
	fs.UintVar(&pages, "memory-pages", 0, "memory limit in 64 KiB pages (default 256)")
	fs.DurationVar(&limit, "timeout", 0, "the function's wall-clock limit per call (default 5s)")
	fs.DurationVar(&limit, "timeout-limit", 0, "same as --timeout (older name)")
	fs.UintVar(&out, "max-output", 0, "stdout limit in bytes (default 1 MiB)")
	fs.StringVar(&req.Unverified, "unverified", "accept", "when no verifier can run a call: accept the executor's result marked unverified, or refuse")
	return cmd
}

func (a *app) fnInvokeCmd() *cobra.Command {
	var (
		group     int
		data, rid string
		async     bool
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME [DATA]",
		Short: "invoke a function: elected executor, verifier, committed record",
		Args:  argsUsage(1, 2, "usage: qledger fn invoke NAME --data JSON [--group G --request-id HEX --async]"),
		RunE: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 2 && data == "":
				data = args[1]
			case len(args) == 2:
				return usageErrorf("usage: qledger fn invoke NAME --data JSON [--group G --request-id HEX --async]")
			}
			c, err := a.client.client()
			if err != nil {
				return err
			}
			req := client.InvokeRequest{Input: []byte(data), RequestID: rid}
			if group >= 0 {
				req.Group = &group
			}
			ctx, cancel := context.WithTimeout(context.Background(), a.client.timeout)
			defer cancel()
			if async {
				return a.invokeAsync(ctx, c, args[0], req)
			}
			start := time.Now()
			res, err := c.InvokeWith(ctx, args[0], req)
			if err != nil && !errors.Is(err, client.ErrNoAgreement) {
				return err
			}
			// A disagreement is a recorded outcome: show its record, then fail.
			if a.out.JSON() {
				if perr := a.printJSON(res); perr != nil {
					return perr
				}
				return err
			}
			return printInvocation(a.stdout, a.stderr, res, time.Since(start))
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&group, "group", -1, "group to run on (default: the gateway picks the least loaded)")
	fs.StringVar(&data, "data", "", "the request payload (stdin of the function), e.g. '{\"value\":100}'")
	fs.StringVar(&rid, "request-id", "", "64 hex digits naming the request: a retry with the same ID returns the recorded result")
	fs.BoolVar(&async, "async", false, "return at once with the invocation's ID ('qledger fn status ID' polls it)")
	return cmd
}

func (a *app) invokeAsync(ctx context.Context, c *client.Client, name string, req client.InvokeRequest) error {
	st, err := c.InvokeAsync(ctx, name, req)
	if err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(st)
	}
	fmt.Fprintf(a.stdout, "%s %s on group %d\n", st.ID, st.Status, st.Group)
	return nil
}

// printInvocation prints the function's output to out and how it was
// run and recorded to info.
func printInvocation(out, info io.Writer, res client.InvokeResponse, took time.Duration) error {
	fmt.Fprintf(out, "%s\n", printable(res.Output))
	fmt.Fprintf(info, "  outcome %s, exit %d, result %s\n  executor %s, verifier %s", res.Outcome, res.ExitCode, short(res.ResultHash), short(res.Executor), short(res.Verifier))
	if res.TieBreaker != "" {
		fmt.Fprintf(info, ", tie-breaker %s (%s)", short(res.TieBreaker), res.Conflict)
	}
	replayed := ""
	if res.Replayed {
		replayed = " (replayed: recorded earlier under this request ID)"
	}
	if res.Unverified {
		fmt.Fprintf(info, "\n  UNVERIFIED: no verifier could run it; the executor's result is accepted alone")
	}
	fmt.Fprintf(info, "\n  request %s, group %d (%s); %d candidates, verified %v; record %s at height %d%s; %s\n",
		short(res.RequestID), res.Group, res.Route, len(res.Election.Candidates), res.Verified, short(res.Receipt.ID), res.Receipt.Height, replayed, took.Round(time.Microsecond))
	if res.Outcome != "ok" {
		return fmt.Errorf("function ended with %s", res.Outcome)
	}
	return nil
}

// fnStatusCmd shows an invocation by ID: pending, failed, or its record.
func (a *app) fnStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status INVOCATION-ID",
		Short: "an asynchronous invocation: pending, failed, or its record",
		Args:  argsUsage(1, 1, "usage: qledger fn status INVOCATION-ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := c.Invocation(ctx, args[0])
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(st)
			}
			switch {
			case st.Result != nil:
				return printInvocation(a.stdout, a.stderr, *st.Result, 0)
			case st.Error != nil:
				return fmt.Errorf("invocation %s failed, nothing recorded: %s", short(st.ID), st.Error.Error)
			}
			fmt.Fprintf(a.stdout, "%s %s on group %d\n", st.ID, st.Status, st.Group)
			return nil
		},
	}
}

func (a *app) fnLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "deployed functions",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			l, err := c.Functions(ctx)
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(l)
			}
			for _, f := range l.Functions {
				fmt.Fprintf(a.stdout, "%-16s %-8s code %s  %d pages  %d ms  height %d\n", f.Name, f.Version, short(f.CodeHash), f.MemoryPages, f.TimeoutMillis, f.Height)
			}
			return nil
		},
	}
}
