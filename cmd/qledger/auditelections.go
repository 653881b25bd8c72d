package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/chain"
	"qledger/execrecord"
	"qledger/fsm"
)

// committedRecord is one execution record's payload as a chain holds it.
type committedRecord struct {
	group   int
	height  uint64
	id      string
	payload []byte
}

// electionFinding is a committed execution record that fails
// execrecord.Check.
type electionFinding struct {
	Group    int    `json:"group"`
	Height   uint64 `json:"height"`
	Tx       string `json:"tx_id"`
	Request  string `json:"request_id,omitempty"`
	Function string `json:"function,omitempty"`
	Error    string `json:"error"`
}

func (a *app) auditElectionsCmd() *cobra.Command {
	var (
		group   int
		from    uint64
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "elections [--group G] [--from H] [--data DIR]",
		Short: "re-check every committed execution record: election, roles, executions and outcome (status 1 if any fails)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if dataDir != "" {
				return a.auditElectionsOffline(dataDir, group, from)
			}
			return a.auditElectionsOnline(group, from)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&group, "group", -1, "only this group (default: every group)")
	fs.Uint64Var(&from, "from", 1, "start at this height")
	fs.StringVar(&dataDir, "data", "", "read the chain stores (chain.db) under this directory offline, instead of asking a node; the node must be stopped")
	return cmd
}

func (a *app) auditElectionsOnline(group int, from uint64) error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	groups, err := groupsOf(ctx, c, group)
	if err != nil {
		return err
	}
	var recs []committedRecord
	for _, g := range groups {
		err := walkBlocks(ctx, c, g, from, func(b client.Block) error {
			for _, tx := range b.Txs {
				if tx.Tx.Kind == "exec" {
					recs = append(recs, committedRecord{group: g, height: b.Height, id: tx.ID, payload: tx.Tx.Payload})
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return a.reportElections(recs)
}

func (a *app) auditElectionsOffline(dir string, group int, from uint64) error {
	paths, err := fsm.FindStores(dir)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("no chain store (%s) under %s", fsm.StoreFile, dir)
	}
	var recs []committedRecord
	for _, p := range paths {
		rs, err := storeRecords(p, group, from)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		recs = append(recs, rs...)
	}
	return a.reportElections(recs)
}

// storeRecords reads the execution records of a stopped node's chain
// store from height from on; none if group >= 0 and the store is another
// group's.
func storeRecords(path string, group int, from uint64) ([]committedRecord, error) {
	s, err := fsm.OpenStoreReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	g := int(s.Group())
	if group >= 0 && g != group {
		return nil, nil
	}
	var out []committedRecord
	for h := max(from, 1); ; {
		raws, err := s.Blocks(h, 200)
		if err != nil || len(raws) == 0 {
			return out, err
		}
		for _, raw := range raws {
			b, err := chain.DecodeBlock(raw)
			if err != nil {
				return nil, fmt.Errorf("height %d: %w", h, err)
			}
			for _, txb := range b.Txs {
				t, _ := chain.DecodeTx(txb) // DecodeBlock decoded it
				if t.Kind == chain.TxExec {
					out = append(out, committedRecord{group: g, height: b.Header.Height, id: chain.TxID(txb).String(), payload: t.Payload})
				}
			}
			h = b.Header.Height + 1
		}
	}
}

// reportElections checks every record (execrecord.Check) and prints the
// ones that fail; it fails when any does.
func (a *app) reportElections(recs []committedRecord) error {
	var bad []electionFinding
	for _, r := range recs {
		f := electionFinding{Group: r.group, Height: r.height, Tx: r.id}
		x, err := execrecord.Decode(r.payload)
		if err == nil {
			f.Request, f.Function = fmt.Sprintf("%x", x.RequestID[:]), x.Function
			err = execrecord.Check(x)
		}
		if err != nil {
			f.Error = err.Error()
			bad = append(bad, f)
		}
	}
	if a.out.JSON() {
		if err := a.printJSON(map[string]any{"records": len(recs), "failed": bad}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "%d execution records checked, %d fail\n", len(recs), len(bad))
		for _, f := range bad {
			fmt.Fprintf(a.stdout, "  FAIL group %d height %d tx %s request %.16s %s: %s\n", f.Group, f.Height, short(f.Tx), f.Request, f.Function, f.Error)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("audit: %d of %d execution records fail their check", len(bad), len(recs))
	}
	return nil
}
