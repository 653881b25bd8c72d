package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/chain"
	"qledger/execrecord"
	"qledger/fsm"
	"qledger/function"
)

// committedRecord is one execution record's payload as a chain holds it.
type committedRecord struct {
	group   int
	height  uint64
	id      string
	payload []byte
	// refuses: the deployment of the record's function in force where
	// the record stands (the latest one before it in its group's chain)
	// refuses unverified results.
	refuses bool
}

// recordWalk collects one group's execution records from height from on,
// walking its chain from the start so that it knows each function's
// deployment in force at every record, as the state machine did when it
// applied the record (fsm checkTx: the latest valid deployment before it).
type recordWalk struct {
	group    int
	from     uint64
	policies map[string]function.UnverifiedPolicy
	records  []committedRecord
}

func newRecordWalk(group int, from uint64) *recordWalk {
	return &recordWalk{group: group, from: from, policies: map[string]function.UnverifiedPolicy{}}
}

// tx takes the next transaction of the group's chain, in chain order.
func (w *recordWalk) tx(height uint64, id string, kind chain.TxKind, payload []byte) {
	switch kind {
	case chain.TxDeploy:
		var d function.Deployment
		if d.UnmarshalBinary(payload) == nil { // an invalid deployment indexes nothing
			w.policies[d.Spec.Name] = d.Spec.Unverified
		}
	case chain.TxExec:
		if height < w.from {
			return
		}
		r := committedRecord{group: w.group, height: height, id: id, payload: payload}
		if x, err := execrecord.Decode(payload); err == nil {
			r.refuses = w.policies[x.Function] == function.UnverifiedRefuse
		}
		w.records = append(w.records, r)
	}
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
		Short: "re-check every committed execution record: election, roles, executions, outcome and the function's unverified policy (status 1 if any fails)",
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
		w := newRecordWalk(g, from)
		err := walkBlocks(ctx, c, g, 1, func(b client.Block) error {
			for _, tx := range b.Txs {
				switch tx.Tx.Kind {
				case "deploy":
					w.tx(b.Height, tx.ID, chain.TxDeploy, tx.Tx.Payload)
				case "exec":
					w.tx(b.Height, tx.ID, chain.TxExec, tx.Tx.Payload)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		recs = append(recs, w.records...)
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
	w := newRecordWalk(g, from)
	for h := uint64(1); ; {
		raws, err := s.Blocks(h, 200)
		if err != nil || len(raws) == 0 {
			return w.records, err
		}
		for _, raw := range raws {
			b, err := chain.DecodeBlock(raw)
			if err != nil {
				return nil, fmt.Errorf("height %d: %w", h, err)
			}
			for _, txb := range b.Txs {
				t, _ := chain.DecodeTx(txb) // DecodeBlock decoded it
				w.tx(b.Header.Height, chain.TxID(txb).String(), t.Kind, t.Payload)
			}
			h = b.Header.Height + 1
		}
	}
}

// reportElections checks every record (execrecord.Check, and the
// unverified policy of its function's deployment in force) and prints the
// ones that fail; it fails when any does.
func (a *app) reportElections(recs []committedRecord) error {
	var bad []electionFinding
	for _, r := range recs {
		f := electionFinding{Group: r.group, Height: r.height, Tx: r.id}
		x, err := execrecord.Decode(r.payload)
		if err == nil {
			f.Request, f.Function = fmt.Sprintf("%x", x.RequestID[:]), x.Function
			err = execrecord.Check(x)
			if err == nil && x.Agreed && !x.Verified && r.refuses {
				err = fmt.Errorf("accepted unverified, but function %s's deployment in force refuses unverified results", x.Function)
			}
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
