package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/chain"
	"qledger/execrecord"
	"qledger/fsm"
	"qledger/pki"
)

func (a *app) chainCmd() *cobra.Command {
	return a.clientGroup(group("chain", "head | show | verify | migrate chains", a.chainHeadCmd(), a.chainShowCmd(), a.chainVerifyCmd(), a.chainMigrateCmd()))
}

func headLine(h client.Head) string {
	if h.Height == 0 {
		return fmt.Sprintf("group %d: empty (log size 0, root %s)", h.Group, h.LogRoot)
	}
	return fmt.Sprintf("group %d: height %d  hash %s\n  log size %d  log root %s  time %s", h.Group, h.Height, h.Hash, h.LogSize, h.LogRoot, time.Unix(0, h.Timestamp).UTC().Format(time.RFC3339Nano))
}

func (a *app) chainHeadCmd() *cobra.Command {
	var (
		group int
		level string
	)
	cmd := &cobra.Command{
		Use:   "head",
		Short: "every group's head (or one group's)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			groups, err := groupsOf(ctx, c, group)
			if err != nil {
				return err
			}
			var heads []client.Head
			for _, g := range groups {
				h, err := c.Head(ctx, g, client.Level(level))
				if err != nil {
					return err
				}
				heads = append(heads, h)
			}
			if a.out.JSON() {
				return a.printJSON(heads)
			}
			for _, h := range heads {
				fmt.Fprintln(a.stdout, headLine(h))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&group, "group", -1, "group (default: every group)")
	cmd.Flags().StringVar(&level, "level", "", "read consistency: stale, default or linearizable")
	return cmd
}

// groupsOf is the groups a --group flag names: that one, or every group
// of the cluster when it is negative.
func groupsOf(ctx context.Context, c *client.Client, group int) ([]int, error) {
	if group >= 0 {
		return []int{group}, nil
	}
	return allGroups(ctx, c)
}

// walkBlocks calls fn with each block of group g's chain from height from
// up to the head as it was when the walk began, 200 blocks a read.
func walkBlocks(ctx context.Context, c *client.Client, g int, from uint64, fn func(client.Block) error) error {
	head, err := c.Head(ctx, g, "")
	if err != nil {
		return err
	}
	for h := max(from, 1); h <= head.Height; {
		bs, err := c.Blocks(ctx, g, h, 200, "")
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			return nil
		}
		for _, b := range bs {
			h = b.Height + 1
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// allGroups lists the cluster's groups.
func allGroups(ctx context.Context, c *client.Client) ([]int, error) {
	st, err := c.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	var groups []int
	for _, g := range st.Groups {
		groups = append(groups, g.Group)
	}
	return groups, nil
}

func (a *app) chainShowCmd() *cobra.Command {
	var (
		group  int
		height uint64
	)
	cmd := &cobra.Command{
		Use:   "show",
		Short: "one block, execution records rendered",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			h := height
			if h == 0 {
				head, err := c.Head(ctx, group, "")
				if err != nil {
					return err
				}
				if head.Height == 0 {
					return a.printNoBlocks(group)
				}
				h = head.Height
			}
			b, err := c.Block(ctx, group, h, "")
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(b)
			}
			printBlock(a.stdout, b)
			return nil
		},
	}
	cmd.Flags().IntVar(&group, "group", 0, "group")
	cmd.Flags().Uint64Var(&height, "height", 0, "block height (default: the head)")
	return cmd
}

// printNoBlocks reports an empty chain, which is a fact and not a
// failure: "null" for scripts, a sentence for people.
func (a *app) printNoBlocks(group int) error {
	if a.out.JSON() {
		return a.printJSON(nil)
	}
	fmt.Fprintf(a.stdout, "group %d: no blocks yet\n", group)
	return nil
}

func printBlock(w io.Writer, b client.Block) {
	fmt.Fprintf(w, "block %d of group %d\n  hash %s\n  prev %s\n  time %s\n  tx root %s (%d transactions)\n  log size %d  log root %s\n",
		b.Height, b.Group, b.Hash, b.PrevHash, time.Unix(0, b.Timestamp).UTC().Format(time.RFC3339Nano), b.TxRoot, b.TxCount, b.LogSize, b.LogRoot)
	for i, tx := range b.Txs {
		switch {
		case tx.Withheld:
			fmt.Fprintf(w, "  [%d] %s  %s  withheld (a share of an item whose reader list does not name you)\n", i, tx.ID, tx.Tx.Kind)
		case tx.Tx.Kind == "exec":
			fmt.Fprintf(w, "  [%d] %s  execution record\n", i, tx.ID)
			printExecRecord(w, tx.Tx.Payload)
		default:
			fmt.Fprintf(w, "  [%d] %s  %s  %d bytes  %s\n", i, tx.ID, tx.Tx.Kind, len(tx.Tx.Payload), printable(tx.Tx.Payload))
		}
	}
}

// decodeExecRecord decodes an execution record transaction's payload, in
// either encoding a chain may hold (execrecord.Decode).
func decodeExecRecord(payload []byte) (execrecord.Record, error) {
	return execrecord.Decode(payload)
}

// printExecRecord renders an execution record for people.
func printExecRecord(w io.Writer, payload []byte) {
	x, err := decodeExecRecord(payload)
	if err != nil {
		fmt.Fprintf(w, "      (does not decode as an execution record: %v)\n", err)
		return
	}
	caller := x.Caller
	if caller == "" {
		caller = "anonymous"
	}
	fmt.Fprintf(w, "      %s %s (code %s)  request %x  caller %s  route %s\n", x.Function, x.FnVersion, short(x.CodeHash.String()), x.RequestID[:8], caller, x.Route)
	fmt.Fprintf(w, "      input %s -> output %s\n", printable(x.Input), printable(x.Response))
	verdict := "verified (two or more nodes agree)"
	switch {
	case !x.Agreed:
		verdict = "NO AGREEMENT"
	case !x.Verified:
		verdict = "unverified (one execution)"
	}
	fmt.Fprintf(w, "      outcome %s, exit %d, result %s: %s; %d µs\n", x.Outcome, x.ExitCode, short(x.ResultHash.String()), verdict, x.Micros)
	fmt.Fprintf(w, "      election: key %s, %d candidates; executor %.12s, verifier %.12s", x.Election.KeyID, len(x.Election.Candidates), x.Executor, x.Verifier)
	if x.TieBreaker != "" {
		fmt.Fprintf(w, ", tie-breaker %.12s", x.TieBreaker)
	}
	fmt.Fprintln(w)
	for _, e := range x.Executions {
		state := fmt.Sprintf("%s exit %d result %s", e.Outcome, e.ExitCode, short(e.Hash.String()))
		if e.Err != "" {
			state = "failed: " + e.Err
		} else if e.Hash != x.ResultHash {
			state += "  DISAGREES"
		}
		fmt.Fprintf(w, "        %.12s  %s  %d µs\n", e.NodeID, state, e.Micros)
	}
	if x.Conflict != "" {
		fmt.Fprintf(w, "      conflict: %s\n", x.Conflict)
	}
}

func (a *app) chainVerifyCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "download and verify every chain and each head's signature (or verify stopped nodes' stores offline)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if dataDir != "" {
				return a.verifyOffline(dataDir)
			}
			return a.verifyOnline()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "verify the chain stores (chain.db) under this directory offline, instead of asking a node; the node must be stopped")
	return cmd
}

// verifyOnline verifies every group's chain over the API, each up to its
// head, and with the CA the head's signature.
func (a *app) verifyOnline() error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	creds, err := a.client.tls.credentials()
	if err != nil {
		return err
	}
	var reports []map[string]any
	failed := 0
	for _, g := range st.Groups {
		r, err := verifyGroup(ctx, c, g.Group, creds)
		if err != nil {
			failed++
		}
		reports = append(reports, r)
		if !a.out.JSON() {
			printGroupReport(a.stdout, r, err)
		}
	}
	if a.out.JSON() {
		if err := a.printJSON(reports); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d groups failed verification", failed, len(st.Groups))
	}
	return nil
}

// verifyGroup verifies one group's chain up to its head; with creds, the
// head the chain must end at is signed by a node of the cluster.
func verifyGroup(ctx context.Context, c *client.Client, group int, creds *pki.Credentials) (map[string]any, error) {
	signer := ""
	var rep client.ChainReport
	h, err := c.Head(ctx, group, "")
	if err == nil && creds != nil {
		var id pki.Identity
		if id, err = client.VerifyHeadSignature(h, creds.Pool()); err == nil {
			signer = id.NodeID
		}
	}
	if err == nil {
		rep, err = c.VerifyGroupTo(ctx, group, h)
	}
	r := map[string]any{"group": group, "blocks": rep.Blocks, "txs": rep.Txs, "ok": err == nil}
	if signer != "" {
		r["signed_by"] = signer
	}
	if err != nil {
		r["error"] = err.Error()
		if ve, ok := chain.IsVerifyError(err); ok {
			r["bad_height"] = ve.Height
		}
	} else {
		r["head"] = rep.Head.Hash
		r["log_root"] = rep.Head.LogRoot
	}
	return r, err
}

func printGroupReport(w io.Writer, r map[string]any, err error) {
	if err != nil {
		fmt.Fprintf(w, "group %d: FAILED: %v\n", r["group"], err)
		return
	}
	fmt.Fprintf(w, "group %d: ok  %d blocks  %d transactions  head %s", r["group"], r["blocks"], r["txs"], short(r["head"].(string)))
	if signer, ok := r["signed_by"].(string); ok {
		fmt.Fprintf(w, "  head signed by node %.12s", signer)
	}
	fmt.Fprintln(w)
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// verifyOffline verifies every chain store under dir (a node's data
// directory, or a dev cluster's with one directory per node).
func (a *app) verifyOffline(dir string) error {
	paths, err := storesUnder(dir)
	if err != nil {
		return err
	}
	var reports []map[string]any
	failed := 0
	for _, p := range paths {
		rep, err := fsm.VerifyStoreFile(p)
		r := map[string]any{"path": p, "group": rep.Group, "blocks": rep.Blocks, "txs": rep.Txs, "ok": err == nil}
		if err != nil {
			failed++
			r["error"] = err.Error()
			if ve, ok := chain.IsVerifyError(err); ok {
				r["bad_height"] = ve.Height
			}
		} else if rep.Blocks > 0 {
			r["head"] = rep.Head.Hash().String()
			r["log_root"] = rep.Head.LogRoot.String()
		}
		reports = append(reports, r)
		switch {
		case a.out.JSON():
		case err != nil:
			fmt.Fprintf(a.stdout, "%s: FAILED: %v\n", p, err)
		default:
			fmt.Fprintf(a.stdout, "%s: ok  group %d  %d blocks  %d transactions  head %s\n", p, rep.Group, rep.Blocks, rep.Txs, short(rep.Head.Hash().String()))
		}
	}
	if a.out.JSON() {
		if err := a.printJSON(reports); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d chain stores failed verification", failed, len(paths))
	}
	return nil
}

func (a *app) chainMigrateCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "convert stopped nodes' chain stores to this build's on-disk format (a node also does it when it starts)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if dataDir == "" {
				return usageErrorf("chain migrate: --data is required")
			}
			return a.migrateOffline(dataDir)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "convert the chain stores (chain.db) under this directory; the node must be stopped")
	return cmd
}

// migrateOffline converts every chain store under dir to the current
// on-disk format (fsm.MigrateFile), crash-safely, one after the other.
func (a *app) migrateOffline(dir string) error {
	paths, err := storesUnder(dir)
	if err != nil {
		return err
	}
	var reports []map[string]any
	for _, p := range paths {
		migrated, err := fsm.MigrateFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w (is the node still running?)", p, err)
		}
		reports = append(reports, map[string]any{"path": p, "migrated": migrated, "format": fsm.FormatVersion})
		if !a.out.JSON() {
			what := "already"
			if migrated {
				what = "converted to"
			}
			fmt.Fprintf(a.stdout, "%s: %s format %d\n", p, what, fsm.FormatVersion)
		}
	}
	if a.out.JSON() {
		return a.printJSON(reports)
	}
	return nil
}

// storesUnder lists the chain stores under dir (a node's data directory,
// or a dev cluster's with one directory per node); none is an error.
func storesUnder(dir string) ([]string, error) {
	paths, err := fsm.FindStores(dir)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no chain store (%s) under %s", fsm.StoreFile, dir)
	}
	return paths, nil
}
