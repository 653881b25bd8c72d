package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"qledger/api/client"
)

func runFn(args []string) error {
	return subcommand(args, "fn", map[string]func([]string) error{"deploy": fnDeploy, "invoke": fnInvoke, "ls": fnLs, "status": fnStatus},
		[]string{"deploy", "invoke", "ls", "status"})
}

func fnDeploy(args []string) error {
	fs := flag.NewFlagSet("fn deploy", flag.ExitOnError)
	var cf clientFlags
	cf.registerAs(fs, "request-timeout")
	var req client.DeployRequest
	fs.StringVar(&req.Version, "version", "1", "version label")
	pages := fs.Uint("memory-pages", 0, "memory limit in 64 KiB pages (default 256)")
	timeout := fs.Duration("timeout", 0, "the function's wall-clock limit per call (default 5s)")
	fs.DurationVar(timeout, "timeout-limit", 0, "same as --timeout (older name)")
	out := fs.Uint("max-output", 0, "stdout limit in bytes (default 1 MiB)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: qledger fn deploy NAME MODULE.wasm [--version V --memory-pages N --timeout D]")
	}
	req.Name = pos[0]
	if req.Code, err = os.ReadFile(pos[1]); err != nil {
		return err
	}
	req.MemoryPages, req.TimeoutMillis, req.MaxOutputBytes = uint32(*pages), timeout.Milliseconds(), uint32(*out)
	c, ctx, cancel, err := cf.connect(4)
	if err != nil {
		return err
	}
	defer cancel()
	res, err := c.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(res)
	}
	fmt.Printf("deployed %s %s (code %s, %d bytes) to %d groups\n", res.Name, res.Version, short(res.CodeHash), len(req.Code), len(res.Receipts))
	return nil
}

func fnInvoke(args []string) error {
	fs := flag.NewFlagSet("fn invoke", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	group := fs.Int("group", -1, "group to run on (default: the gateway picks the least loaded)")
	data := fs.String("data", "", "the request payload (stdin of the function), e.g. '{\"value\":100}'")
	rid := fs.String("request-id", "", "64 hex digits naming the request: a retry with the same ID returns the recorded result")
	async := fs.Bool("async", false, "return at once with the invocation's ID ('qledger fn status ID' polls it)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 2 && *data == "":
		*data = pos[1]
	case len(pos) != 1:
		return errors.New("usage: qledger fn invoke NAME --data JSON [--group G --request-id HEX --async]")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	req := client.InvokeRequest{Input: []byte(*data), RequestID: *rid}
	if *group >= 0 {
		req.Group = group
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	if *async {
		st, err := c.InvokeAsync(ctx, pos[0], req)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(st)
		}
		fmt.Printf("%s %s on group %d\n", st.ID, st.Status, st.Group)
		return nil
	}
	start := time.Now()
	res, err := c.InvokeWith(ctx, pos[0], req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(res)
	}
	return printInvocation(res, time.Since(start))
}

func printInvocation(res client.InvokeResponse, took time.Duration) error {
	fmt.Printf("%s\n", printable(res.Output))
	fmt.Fprintf(os.Stderr, "  outcome %s, exit %d, result %s\n  executor %s, verifier %s", res.Outcome, res.ExitCode, short(res.ResultHash), short(res.Executor), short(res.Verifier))
	if res.TieBreaker != "" {
		fmt.Fprintf(os.Stderr, ", tie-breaker %s (%s)", short(res.TieBreaker), res.Conflict)
	}
	replayed := ""
	if res.Replayed {
		replayed = " (replayed: recorded earlier under this request ID)"
	}
	fmt.Fprintf(os.Stderr, "\n  request %s, group %d (%s); %d candidates, verified %v; record %s at height %d%s; %s\n",
		short(res.RequestID), res.Group, res.Route, len(res.Election.Candidates), res.Verified, short(res.Receipt.ID), res.Receipt.Height, replayed, took.Round(time.Microsecond))
	if res.Outcome != "ok" {
		return fmt.Errorf("function ended with %s", res.Outcome)
	}
	return nil
}

// fnStatus shows an invocation by ID: pending, failed, or its record.
func fnStatus(args []string) error {
	fs := flag.NewFlagSet("fn status", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: qledger fn status INVOCATION-ID")
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Invocation(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(st)
	}
	switch {
	case st.Result != nil:
		return printInvocation(*st.Result, 0)
	case st.Error != nil:
		return fmt.Errorf("invocation %s failed, nothing recorded: %s", short(st.ID), st.Error.Error)
	}
	fmt.Printf("%s %s on group %d\n", st.ID, st.Status, st.Group)
	return nil
}

func fnLs(args []string) error {
	fs := flag.NewFlagSet("fn ls", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	l, err := c.Functions(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(l)
	}
	for _, f := range l.Functions {
		fmt.Printf("%-16s %-8s code %s  %d pages  %d ms  height %d\n", f.Name, f.Version, short(f.CodeHash), f.MemoryPages, f.TimeoutMillis, f.Height)
	}
	return nil
}
