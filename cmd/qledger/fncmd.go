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
	return subcommand(args, "fn", map[string]func([]string) error{"deploy": fnDeploy, "invoke": fnInvoke, "ls": fnLs}, []string{"deploy", "invoke", "ls"})
}

func fnDeploy(args []string) error {
	fs := flag.NewFlagSet("fn deploy", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	var req client.DeployRequest
	fs.StringVar(&req.Version, "version", "1", "version label")
	pages := fs.Uint("memory-pages", 0, "memory limit in 64 KiB pages (default 256)")
	timeout := fs.Duration("timeout-limit", 0, "wall-clock limit of one call (default 5s)")
	out := fs.Uint("max-output", 0, "stdout limit in bytes (default 1 MiB)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: qledger fn deploy NAME MODULE.wasm [--version V]")
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
	group := fs.Int("group", -1, "group to run on (default: picked by the request ID)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: qledger fn invoke NAME INPUT")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var g *int
	if *group >= 0 {
		g = group
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	start := time.Now()
	res, err := c.Invoke(ctx, pos[0], []byte(pos[1]), g)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(res)
	}
	fmt.Printf("%s\n", printable(res.Output))
	fmt.Fprintf(os.Stderr, "  outcome %s, exit %d, result %s\n  executor %s, verifier %s", res.Outcome, res.ExitCode, short(res.ResultHash), short(res.Executor), short(res.Verifier))
	if res.TieBreaker != "" {
		fmt.Fprintf(os.Stderr, ", tie-breaker %s (%s)", short(res.TieBreaker), res.Conflict)
	}
	fmt.Fprintf(os.Stderr, "\n  %d candidates, verified %v; record %s at group %d height %d; %s\n",
		len(res.Election.Candidates), res.Verified, short(res.Receipt.ID), res.Receipt.Group, res.Receipt.Height, time.Since(start).Round(time.Microsecond))
	if res.Outcome != "ok" {
		return fmt.Errorf("function ended with %s", res.Outcome)
	}
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
