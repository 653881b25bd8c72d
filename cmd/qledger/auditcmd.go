package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/execrecord"
)

func (a *app) auditCmd() *cobra.Command {
	return a.clientGroup(group("audit", "watch | conflicts | elections: keep the last verified head of every group and check each new one; re-check execution records",
		a.auditWatchCmd(), a.auditConflictsCmd(), a.auditElectionsCmd()))
}

// auditWatchCmd keeps an auditor's trusted state: the last verified head
// of every group. Each new head must carry a valid signature (with --ca)
// and extend the trusted one (consistency proof, linked blocks); a
// rollback, fork or rewritten suffix is reported with the heights
// involved.
func (a *app) auditWatchCmd() *cobra.Command {
	var (
		state    string
		interval time.Duration
		once     bool
		format   string
	)
	cmd := &cobra.Command{
		Use:   "watch --state FILE [--format api|c2sp]",
		Short: "check every new head against the trusted state: signature, consistency proof, linked blocks",
		Long: `Check every new head against the trusted state.

--format api (the default) reads the JSON API: each head's signature, a
consistency proof from the trusted head and the blocks linking back to it.
--format c2sp reads only the C2SP endpoints and checks them with
golang.org/x/mod/sumdb: the checkpoint opens under a note key its node's
certificate endorses (--ca is required), the tiles give its root, and a
tlog tree proof over the tiles shows it extends the trusted checkpoint.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if state == "" {
				return usageErrorf("audit watch: --state is required")
			}
			if format != "api" && format != "c2sp" {
				return usageErrorf("audit watch: --format must be api or c2sp, not %q", format)
			}
			return a.auditWatch(state, interval, once, format == "c2sp")
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&state, "state", "", "trusted-state file (created if missing) [required]")
	bindEnv(fs, "state", "QLEDGER_AUDIT_STATE")
	fs.DurationVar(&interval, "interval", 5*time.Second, "time between passes")
	fs.BoolVar(&once, "once", false, "run one pass and exit: status 1 if anything was found")
	fs.StringVar(&format, "format", "api", "what to read and check: api (JSON heads and proofs) or c2sp (signed checkpoints and tiles)")
	return cmd
}

func (a *app) auditWatch(state string, interval time.Duration, once, c2sp bool) error {
	c, err := a.client.client()
	if err != nil {
		return err
	}
	st, err := client.LoadAuditState(state)
	if err != nil {
		return err
	}
	var opt client.AuditOptions
	if creds, err := a.client.tls.credentials(); err != nil {
		return err
	} else if creds != nil {
		opt.Roots = creds.Pool()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	pass := a.auditPass
	if c2sp {
		pass = a.auditC2SPPass
	}
	for {
		found, err := pass(c, st, opt)
		if err != nil {
			fmt.Fprintln(a.stderr, "audit:", err)
		}
		if err := st.Save(state); err != nil {
			return err
		}
		if once {
			if found > 0 {
				return fmt.Errorf("audit: %d findings", found)
			}
			return err
		}
		select {
		case <-sig:
			return nil
		case <-time.After(interval):
		}
	}
}

// auditPass audits every group once and returns the number of findings.
func (a *app) auditPass(c *client.Client, st *client.AuditState, opt client.AuditOptions) (int, error) {
	return a.auditEachGroup(c, func(ctx context.Context, g int) (any, string, error) {
		prev, had := st.Latest(g)
		h, err := c.AuditGroup(ctx, g, st, opt)
		if err != nil {
			return nil, "", err
		}
		report := map[string]any{"group": g, "ok": true, "height": h.Height, "hash": h.Hash, "signer": h.Signer}
		switch {
		case !had && h.Height == 0:
			return report, fmt.Sprintf("group %d: trusted head 0 (an empty chain; nothing to verify yet)", g), nil
		case !had:
			return report, fmt.Sprintf("group %d: trusted head %d %s (whole chain verified; signed by %.12s)", g, h.Height, short(h.Hash), h.Signer), nil
		case h.Height > prev.Height:
			return report, fmt.Sprintf("group %d: head %d -> %d extends the trusted log (consistency proof verified; signed by %.12s)", g, prev.Height, h.Height, h.Signer), nil
		}
		return report, "", nil
	})
}

// auditC2SPPass audits every group's C2SP checkpoint once and returns
// the number of findings.
func (a *app) auditC2SPPass(c *client.Client, st *client.AuditState, opt client.AuditOptions) (int, error) {
	return a.auditEachGroup(c, func(ctx context.Context, g int) (any, string, error) {
		prev, had := st.Checkpoints[strconv.Itoa(g)]
		cp, err := c.AuditCheckpoint(ctx, g, st, opt.Roots)
		if err != nil {
			return nil, "", err
		}
		report := map[string]any{"group": g, "ok": true, "origin": cp.Origin, "size": cp.Size, "root": cp.Root, "height": cp.Height}
		switch {
		case !had:
			return report, fmt.Sprintf("group %d: trusted checkpoint %s size %d (note signature and tiles verified)", g, cp.Origin, cp.Size), nil
		case cp.Size > prev.Size:
			return report, fmt.Sprintf("group %d: checkpoint size %d -> %d extends the trusted log (tlog tree proof over the tiles verified)", g, prev.Size, cp.Size), nil
		}
		return report, "", nil
	})
}

// auditEachGroup runs check on every group of the cluster under one
// deadline and returns the number of findings. A finding
// (*client.Finding) is printed as an ALERT line (or as JSON); another
// error goes to stderr; a group that passes prints check's JSON report
// with --json, else its line (none when nothing changed).
func (a *app) auditEachGroup(c *client.Client, check func(ctx context.Context, g int) (report any, line string, err error)) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*a.client.timeout)
	defer cancel()
	cs, err := c.Cluster(ctx)
	if err != nil {
		return 0, err
	}
	found := 0
	for _, g := range cs.Groups {
		report, line, err := check(ctx, g.Group)
		var f *client.Finding
		switch {
		case errors.As(err, &f):
			found++
			if a.out.JSON() {
				_ = a.printJSON(f)
			} else {
				fmt.Fprintf(a.stdout, "ALERT %v\n", f)
			}
		case err != nil:
			fmt.Fprintf(a.stderr, "audit: group %d: %v\n", g.Group, err)
		case a.out.JSON():
			_ = a.printJSON(report)
		case line != "":
			fmt.Fprintln(a.stdout, line)
		}
	}
	return found, nil
}

// nodeTally is one node's record as an executor across execution records.
type nodeTally struct {
	Node          string `json:"node"`
	Executions    int    `json:"executions"`
	Disagreements int    `json:"disagreements"` // its result differs from the recorded one
	Failures      int    `json:"failures"`      // it could not run the request
	NoAgreement   int    `json:"no_agreement"`  // records with no majority it took part in
}

// conflictRecord names one execution record with a conflict.
type conflictRecord struct {
	Group    int    `json:"group"`
	Height   uint64 `json:"height"`
	Request  string `json:"request_id"`
	Function string `json:"function"`
	Agreed   bool   `json:"agreed"`
	Conflict string `json:"conflict"`
}

func (a *app) auditConflictsCmd() *cobra.Command {
	var group int
	cmd := &cobra.Command{
		Use:   "conflicts",
		Short: "per node: executions, disagreements, failures; every record with a conflict",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return a.auditConflicts(group) },
	}
	cmd.Flags().IntVar(&group, "group", -1, "only this group (default: every group)")
	return cmd
}

// auditConflicts reads every execution record of the chains and lists,
// per node, how often its execution disagreed with the recorded result or
// failed, and every record with a conflict.
func (a *app) auditConflicts(group int) error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	records, err := execRecords(ctx, c, group)
	if err != nil {
		return err
	}
	nodes, conflicts := tallyRecords(records)
	if a.out.JSON() {
		return a.printJSON(map[string]any{"records": len(records), "nodes": nodes, "conflicts": conflicts})
	}
	fmt.Fprintf(a.stdout, "%d execution records, %d with a conflict\n", len(records), len(conflicts))
	fmt.Fprintf(a.stdout, "  %-12s  %10s  %13s  %8s  %12s\n", "node", "executions", "disagreements", "failures", "no agreement")
	for _, t := range nodes {
		fmt.Fprintf(a.stdout, "  %.12s  %10d  %13d  %8d  %12d\n", t.Node, t.Executions, t.Disagreements, t.Failures, t.NoAgreement)
	}
	for _, r := range conflicts {
		fmt.Fprintf(a.stdout, "  group %d height %d request %.16s %s: %s\n", r.Group, r.Height, r.Request, r.Function, r.Conflict)
	}
	return nil
}

// recordAt is an execution record and the block that holds it.
type recordAt struct {
	group  int
	height uint64
	rec    execrecord.Record
}

// execRecords reads every execution record of group's chain (group < 0:
// every group's).
func execRecords(ctx context.Context, c *client.Client, group int) ([]recordAt, error) {
	groups, err := groupsOf(ctx, c, group)
	if err != nil {
		return nil, err
	}
	var out []recordAt
	for _, g := range groups {
		err := walkBlocks(ctx, c, g, 1, func(b client.Block) error {
			recs, err := blockRecords(g, b)
			out = append(out, recs...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// blockRecords decodes the execution records of group's block b.
func blockRecords(group int, b client.Block) ([]recordAt, error) {
	var out []recordAt
	for _, tx := range b.Txs {
		if tx.Tx.Kind != "exec" {
			continue
		}
		x, err := decodeExecRecord(tx.Tx.Payload)
		if err != nil {
			return nil, fmt.Errorf("group %d height %d: execution record %s does not decode: %w", group, b.Height, short(tx.ID), err)
		}
		out = append(out, recordAt{group: group, height: b.Height, rec: x})
	}
	return out, nil
}

// tallyRecords counts each node's executions by how they ended, worst
// first, and lists the records with a conflict.
func tallyRecords(records []recordAt) ([]*nodeTally, []conflictRecord) {
	tally := map[string]*nodeTally{}
	var conflicts []conflictRecord
	for _, r := range records {
		x := r.rec
		for _, e := range x.Executions {
			t := tally[e.NodeID]
			if t == nil {
				t = &nodeTally{Node: e.NodeID}
				tally[e.NodeID] = t
			}
			t.Executions++
			switch {
			case e.Err != "":
				t.Failures++
			case !x.Agreed:
				t.NoAgreement++
			case e.Hash != x.ResultHash:
				t.Disagreements++
			}
		}
		if x.Conflict != "" || !x.Agreed {
			conflicts = append(conflicts, conflictRecord{Group: r.group, Height: r.height, Request: fmt.Sprintf("%x", x.RequestID[:]), Function: x.Function, Agreed: x.Agreed, Conflict: x.Conflict})
		}
	}
	nodes := make([]*nodeTally, 0, len(tally))
	for _, t := range tally {
		nodes = append(nodes, t)
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.Disagreements+a.Failures != b.Disagreements+b.Failures {
			return a.Disagreements+a.Failures > b.Disagreements+b.Failures
		}
		return a.Node < b.Node
	})
	return nodes, conflicts
}
