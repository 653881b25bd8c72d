package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"qledger/api/client"
)

func runAudit(args []string) error {
	return subcommand(args, "audit", map[string]func([]string) error{"watch": auditWatch}, []string{"watch"})
}

// auditWatch keeps an auditor's trusted state: the last verified head of
// every group. Each new head must carry a valid signature (with --ca) and
// extend the trusted one (consistency proof, linked blocks); a rollback,
// fork or rewritten suffix is reported with the heights involved.
func auditWatch(args []string) error {
	fs := flag.NewFlagSet("audit watch", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	state := fs.String("state", env("QLEDGER_AUDIT_STATE", ""), "trusted-state file (created if missing) [required]")
	interval := fs.Duration("interval", 5*time.Second, "time between passes")
	once := fs.Bool("once", false, "run one pass and exit: status 1 if anything was found")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *state == "" {
		return errors.New("audit watch: --state is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	st, err := client.LoadAuditState(*state)
	if err != nil {
		return err
	}
	var opt client.AuditOptions
	if creds, err := cf.tls.credentials(); err != nil {
		return err
	} else if creds != nil {
		opt.Roots = creds.Pool()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	for {
		found, err := auditPass(c, st, opt, cf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "audit:", err)
		}
		if err := st.Save(*state); err != nil {
			return err
		}
		if *once {
			if found > 0 {
				return fmt.Errorf("audit: %d findings", found)
			}
			return err
		}
		select {
		case <-sig:
			return nil
		case <-time.After(*interval):
		}
	}
}

// auditPass audits every group once and returns the number of findings.
func auditPass(c *client.Client, st *client.AuditState, opt client.AuditOptions, cf clientFlags) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*cf.timeout)
	defer cancel()
	cs, err := c.Cluster(ctx)
	if err != nil {
		return 0, err
	}
	found := 0
	for _, g := range cs.Groups {
		prev, had := st.Latest(g.Group)
		h, err := c.AuditGroup(ctx, g.Group, st, opt)
		var f *client.Finding
		switch {
		case errors.As(err, &f):
			found++
			if cf.json {
				_ = printJSON(f)
			} else {
				fmt.Printf("ALERT %v\n", f)
			}
		case err != nil:
			fmt.Fprintf(os.Stderr, "audit: group %d: %v\n", g.Group, err)
		case cf.json:
			_ = printJSON(map[string]any{"group": g.Group, "ok": true, "height": h.Height, "hash": h.Hash, "signer": h.Signer})
		case !had:
			fmt.Printf("group %d: trusted head %d %s (whole chain verified; signed by %.12s)\n", g.Group, h.Height, short(h.Hash), h.Signer)
		case h.Height > prev.Height:
			fmt.Printf("group %d: head %d -> %d extends the trusted log (consistency proof verified; signed by %.12s)\n", g.Group, prev.Height, h.Height, h.Signer)
		}
	}
	return found, nil
}
