package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/fsm"
	"qledger/pki"
)

func runChain(args []string) error {
	return subcommand(args, "chain", map[string]func([]string) error{"head": chainHead, "show": chainShow, "verify": chainVerify}, []string{"head", "show", "verify"})
}

func headLine(h client.Head) string {
	if h.Height == 0 {
		return fmt.Sprintf("group %d: empty (log size 0, root %s)", h.Group, h.LogRoot)
	}
	return fmt.Sprintf("group %d: height %d  hash %s\n  log size %d  log root %s  time %s", h.Group, h.Height, h.Hash, h.LogSize, h.LogRoot, time.Unix(0, h.Timestamp).UTC().Format(time.RFC3339Nano))
}

func chainHead(args []string) error {
	fs := flag.NewFlagSet("chain head", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	group := fs.Int("group", -1, "group (default: every group)")
	level := fs.String("level", "", "read consistency: stale, default or linearizable")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	groups := []int{*group}
	if *group < 0 {
		st, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		groups = groups[:0]
		for _, g := range st.Groups {
			groups = append(groups, g.Group)
		}
	}
	var heads []client.Head
	for _, g := range groups {
		h, err := c.Head(ctx, g, client.Level(*level))
		if err != nil {
			return err
		}
		heads = append(heads, h)
	}
	if cf.json {
		return printJSON(heads)
	}
	for _, h := range heads {
		fmt.Println(headLine(h))
	}
	return nil
}

func chainShow(args []string) error {
	fs := flag.NewFlagSet("chain show", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	group := fs.Int("group", 0, "group")
	height := fs.Uint64("height", 0, "block height (default: the head)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	h := *height
	if h == 0 {
		head, err := c.Head(ctx, *group, "")
		if err != nil {
			return err
		}
		if head.Height == 0 {
			return fmt.Errorf("group %d has no blocks yet", *group)
		}
		h = head.Height
	}
	b, err := c.Block(ctx, *group, h, "")
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(b)
	}
	fmt.Printf("block %d of group %d\n  hash %s\n  prev %s\n  time %s\n  tx root %s (%d transactions)\n  log size %d  log root %s\n",
		b.Height, b.Group, b.Hash, b.PrevHash, time.Unix(0, b.Timestamp).UTC().Format(time.RFC3339Nano), b.TxRoot, b.TxCount, b.LogSize, b.LogRoot)
	for i, tx := range b.Txs {
		switch {
		case tx.Withheld:
			fmt.Printf("  [%d] %s  %s  withheld (a share of an item whose reader list does not name you)\n", i, tx.ID, tx.Tx.Kind)
		case tx.Tx.Kind == "exec":
			fmt.Printf("  [%d] %s  execution record\n", i, tx.ID)
			printExecRecord(tx.Tx.Payload, tx.Tx.Submitter)
		default:
			fmt.Printf("  [%d] %s  %s  %d bytes  %s\n", i, tx.ID, tx.Tx.Kind, len(tx.Tx.Payload), printable(tx.Tx.Payload))
		}
	}
	return nil
}

// printExecRecord renders an execution record for people.
func printExecRecord(payload []byte, submitter string) {
	var x cluster.ExecRecord
	if err := json.Unmarshal(payload, &x); err != nil {
		fmt.Printf("      (does not decode as an execution record: %v)\n", err)
		return
	}
	caller := x.Caller
	if caller == "" {
		caller = "anonymous"
	}
	fmt.Printf("      %s %s (code %s)  request %x  caller %s  route %s\n", x.Function, x.FnVersion, short(x.CodeHash.String()), x.RequestID[:8], caller, x.Route)
	fmt.Printf("      input %s -> output %s\n", printable(x.Input), printable(x.Response))
	verdict := "verified (two or more nodes agree)"
	switch {
	case !x.Agreed:
		verdict = "NO AGREEMENT"
	case !x.Verified:
		verdict = "unverified (one execution)"
	}
	fmt.Printf("      outcome %s, exit %d, result %s: %s; %d µs\n", x.Outcome, x.ExitCode, short(x.ResultHash.String()), verdict, x.Micros)
	fmt.Printf("      election: key %s, %d candidates; executor %.12s, verifier %.12s", x.Election.KeyID, len(x.Election.Candidates), x.Executor, x.Verifier)
	if x.TieBreaker != "" {
		fmt.Printf(", tie-breaker %.12s", x.TieBreaker)
	}
	fmt.Println()
	for _, e := range x.Executions {
		state := fmt.Sprintf("%s exit %d result %s", e.Outcome, e.ExitCode, short(e.Hash.String()))
		if e.Err != "" {
			state = "failed: " + e.Err
		} else if e.Hash != x.ResultHash {
			state += "  DISAGREES"
		}
		fmt.Printf("        %.12s  %s  %d µs\n", e.NodeID, state, e.Micros)
	}
	if x.Conflict != "" {
		fmt.Printf("      conflict: %s\n", x.Conflict)
	}
}

func chainVerify(args []string) error {
	flags := flag.NewFlagSet("chain verify", flag.ExitOnError)
	var cf clientFlags
	cf.register(flags)
	dataDir := flags.String("data", "", "verify the chain stores (chain.db) under this directory offline, instead of asking a node; the node must be stopped")
	if _, err := parse(flags, args); err != nil {
		return err
	}
	if *dataDir != "" {
		return verifyOffline(*dataDir, cf.json)
	}
	c, ctx, cancel, err := cf.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	creds, err := cf.tls.credentials()
	if err != nil {
		return err
	}
	var reports []map[string]any
	failed := 0
	for _, g := range st.Groups {
		// With the CA, the head the chain must end at is signed by a node
		// of the cluster.
		signer := ""
		var rep client.ChainReport
		h, err := c.Head(ctx, g.Group, "")
		if err == nil && creds != nil {
			var id pki.Identity
			if id, err = client.VerifyHeadSignature(h, creds.Pool()); err == nil {
				signer = id.NodeID
			}
		}
		if err == nil {
			rep, err = c.VerifyGroupTo(ctx, g.Group, h)
		}
		r := map[string]any{"group": g.Group, "blocks": rep.Blocks, "txs": rep.Txs, "ok": err == nil}
		if signer != "" {
			r["signed_by"] = signer
		}
		if err != nil {
			failed++
			r["error"] = err.Error()
			if ve, ok := chain.IsVerifyError(err); ok {
				r["bad_height"] = ve.Height
			}
		} else {
			r["head"] = rep.Head.Hash
			r["log_root"] = rep.Head.LogRoot
		}
		reports = append(reports, r)
		if !cf.json {
			if err != nil {
				fmt.Printf("group %d: FAILED: %v\n", g.Group, err)
			} else {
				fmt.Printf("group %d: ok  %d blocks  %d transactions  head %s", g.Group, rep.Blocks, rep.Txs, short(rep.Head.Hash))
				if signer != "" {
					fmt.Printf("  head signed by node %.12s", signer)
				}
				fmt.Println()
			}
		}
	}
	if cf.json {
		if err := printJSON(reports); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d groups failed verification", failed, len(st.Groups))
	}
	return nil
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// verifyOffline verifies every chain.db under dir (a node's data
// directory, or a dev cluster's with one directory per node).
func verifyOffline(dir string, asJSON bool) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "chain.db" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("no chain store (chain.db) under %s", dir)
	}
	var reports []map[string]any
	failed := 0
	for _, p := range paths {
		rep, err := verifyStore(p)
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
		if !asJSON {
			if err != nil {
				fmt.Printf("%s: FAILED: %v\n", p, err)
			} else {
				fmt.Printf("%s: ok  group %d  %d blocks  %d transactions  head %s\n", p, rep.Group, rep.Blocks, rep.Txs, short(rep.Head.Hash().String()))
			}
		}
	}
	if asJSON {
		if err := printJSON(reports); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d chain stores failed verification", failed, len(paths))
	}
	return nil
}

// verifyStore checks one stopped node's chain store: the whole chain, and
// that the head the store records is the chain's last block.
func verifyStore(path string) (chain.VerifyReport, error) {
	s, err := fsm.OpenStoreReadOnly(path)
	if err != nil {
		return chain.VerifyReport{}, fmt.Errorf("%w (is the node still running?)", err)
	}
	defer s.Close()
	blocks, ierr := s.AllBlocks()
	rep, err := chain.VerifyChain(s.Group(), blocks)
	if e := ierr(); e != nil {
		return rep, e
	}
	if err != nil {
		return rep, err
	}
	head, ok, err := s.Head()
	if err != nil {
		return rep, err
	}
	if ok != (rep.Blocks > 0) || ok && head != rep.Head {
		return rep, errors.New("recorded head is not the chain's last block")
	}
	return rep, nil
}
