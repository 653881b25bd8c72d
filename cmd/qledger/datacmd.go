package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/sharing"
)

func (a *app) dataCmd() *cobra.Command {
	return a.clientGroup(group("data", "put | get | ls | export-shares | recover: confidential data across groups",
		a.dataPutCmd(), a.dataGetCmd(), a.dataLsCmd(), a.dataExportCmd(), a.dataRecoverCmd()))
}

func (a *app) dataPutCmd() *cobra.Command {
	var (
		opt     client.PutOptions
		readers string
	)
	cmd := &cobra.Command{
		Use:   "put FILE --threshold T",
		Short: "split a file into shares, one per group, and commit them",
		Args:  argsUsage(1, 1, "usage: qledger data put FILE --threshold T [--mode dispersal|paper|asmuth-bloom] [--readers a,b]"),
		RunE: func(_ *cobra.Command, args []string) error {
			if opt.Threshold < 1 {
				return usageErrorf("threshold t must be at least 1 (--threshold T), not %d", opt.Threshold)
			}
			opt.Readers = splitList(readers)
			return a.dataPut(args[0], opt)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&opt.Threshold, "threshold", 0, "t: any t shares recover the data [required]")
	fs.IntVar(&opt.Shares, "shares", 0, "n: number of shares, one per group 0..n-1 (default: every group)")
	fs.StringVar(&opt.Scheme, "mode", "dispersal", "dispersal (AES-GCM + Reed-Solomon, key shared with Asmuth-Bloom), paper (SSDSM's CRT scheme; not confidential) or asmuth-bloom (small secrets)")
	fs.StringVar(&opt.Description, "description", "", "description to find the item by")
	fs.StringVar(&opt.DataID, "id", "", "data ID (default: random)")
	fs.StringVar(&readers, "readers", "", "comma-separated callers allowed to fetch the shares (default: anyone)")
	fs.StringVar(&opt.Caller, "caller", "", "caller identity sent with the requests")
	bindEnv(fs, "caller", "QLEDGER_CALLER")
	return cmd
}

func (a *app) dataPut(path string, opt client.PutOptions) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	c, err := a.client.client()
	if err != nil {
		return err
	}
	if st.Size() > 1<<20 && !a.out.JSON() {
		opt.Progress = func(done, total int) {
			fmt.Fprintf(a.stderr, "\r  %s %d/%d segments", bar(done, total, 30), done, total)
			if done == total {
				fmt.Fprintln(a.stderr)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*a.client.timeout)
	defer cancel()
	start := time.Now()
	res, err := c.PutReader(ctx, in, opt)
	if err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(map[string]any{"data_id": res.DataID, "shares": res.Shares, "digest": res.Digest, "bytes": res.Length, "stored_bytes": res.Bytes, "receipts": res.Receipts})
	}
	el := time.Since(start)
	fmt.Fprintf(a.stdout, "stored %s: %d bytes as %d shares (%s, any %d recover), %d bytes stored in all (%.1f%% of the data per share) in %s (%.1f MB/s)\n",
		res.DataID, res.Length, res.Shares, opt.Scheme, opt.Threshold, res.Bytes, 100*float64(res.Bytes)/float64(res.Shares)/float64(max(1, res.Length)), el.Round(time.Millisecond), float64(res.Length)/1e6/el.Seconds())
	return nil
}

// writeAtomic creates path with what fill writes to it, or not at all: it
// writes a temporary file beside path and renames it over path only
// once fill has succeeded and the file is on disk.
func writeAtomic(path string, fill func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func bar(done, total, width int) string {
	n := width * done / max(1, total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func (a *app) dataGetCmd() *cobra.Command {
	var out, caller string
	cmd := &cobra.Command{
		Use:   "get ID -o FILE",
		Short: "fetch >= t shares, verify them, recover the data and check its digest",
		Args:  argsUsage(1, 1, "usage: qledger data get ID -o FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("usage: qledger data get ID -o FILE")
			}
			return a.dataGet(args[0], out, caller)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&out, "o", "o", "", "write the data to this file [required]")
	fs.StringVar(&caller, "caller", "", "caller identity (must be on the item's reader list)")
	bindEnv(fs, "caller", "QLEDGER_CALLER")
	return cmd
}

func (a *app) dataGet(id, out, caller string) error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	start := time.Now()
	var rep client.GetReport
	err = writeAtomic(out, func(f *os.File) error {
		rep, err = c.GetDataTo(ctx, f, id, caller)
		return err
	})
	if err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(map[string]any{"data_id": id, "bytes": rep.Length, "groups_used": rep.Used, "groups_failed": rep.Failed, "digest_checked": rep.DigestChecked})
	}
	el := time.Since(start)
	digest := "digest checked"
	if !rep.DigestChecked {
		digest = "no digest recorded, so checked only by the scheme"
	}
	fmt.Fprintf(a.stdout, "recovered %s: %d bytes from groups %v (shares and proofs verified, %s) in %s (%.1f MB/s) -> %s\n", id, rep.Length, rep.Used, digest, el.Round(time.Millisecond), float64(rep.Length)/1e6/el.Seconds(), out)
	printFailed(a.stdout, rep.Failed, "  group %d not used: %s\n")
	return nil
}

// printFailed prints a report's failed groups in order, one line each.
func printFailed(w io.Writer, failed map[int]string, format string) {
	gs := make([]int, 0, len(failed))
	for g := range failed {
		gs = append(gs, g)
	}
	sort.Ints(gs)
	for _, g := range gs {
		fmt.Fprintf(w, format, g, failed[g])
	}
}

func (a *app) dataLsCmd() *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "shared data items, from every group's chain",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			l, err := c.ListData(ctx, desc)
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(l)
			}
			for _, it := range l.Items {
				fmt.Fprintf(a.stdout, "%s  %-12s t=%d n=%d  groups %v  %q\n", it.DataID, it.Scheme, it.Threshold, it.Shares, it.Groups, it.Description)
			}
			if len(l.Unreachable) > 0 {
				fmt.Fprintf(a.stdout, "(groups %v did not answer)\n", l.Unreachable)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "only items whose description contains this")
	return cmd
}

// dataExportCmd writes every share it can fetch and verify as a JSON file.
func (a *app) dataExportCmd() *cobra.Command {
	var caller string
	cmd := &cobra.Command{
		Use:   "export-shares ID DIR",
		Short: "write every share that verifies as a JSON file, for offline recovery",
		Args:  argsUsage(2, 2, "usage: qledger data export-shares ID DIR"),
		RunE:  func(_ *cobra.Command, args []string) error { return a.dataExport(args[0], args[1], caller) },
	}
	cmd.Flags().StringVar(&caller, "caller", "", "caller identity")
	bindEnv(cmd.Flags(), "caller", "QLEDGER_CALLER")
	return cmd
}

func (a *app) dataExport(id, dir, caller string) error {
	c, ctx, cancel, err := a.client.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	shares, rep, err := c.FetchShares(ctx, id, caller, len(st.Groups))
	if err != nil && len(shares) == 0 {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := []string{}
	for _, sh := range shares {
		b, err := sh.MarshalJSON()
		if err != nil {
			return err
		}
		p := filepath.Join(dir, fmt.Sprintf("%s.share-%d.json", id, sh.Index))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		files = append(files, p)
		if !a.out.JSON() {
			fmt.Fprintln(a.stdout, "wrote", p)
		}
	}
	if a.out.JSON() {
		out := map[string]any{"data_id": id, "files": files, "groups_failed": rep.Failed, "sufficient": err == nil}
		if jerr := a.printJSON(out); jerr != nil {
			return jerr
		}
	} else {
		printFailed(a.stdout, rep.Failed, "group %d: not exported: %s\n")
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: the shares exported do not suffice: %v\n", err)
	}
	return nil
}

// dataRecoverCmd recovers data offline from exported share files.
func (a *app) dataRecoverCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "recover DIR -o FILE",
		Short: "recover data offline from exported share files",
		Args:  argsUsage(1, 1, "usage: qledger data recover DIR -o FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("usage: qledger data recover DIR -o FILE")
			}
			return a.dataRecover(args[0], out)
		},
	}
	cmd.Flags().StringVarP(&out, "o", "o", "", "write the data to this file [required]")
	return cmd
}

func (a *app) dataRecover(dir, out string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var shares []*sharing.Share
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var sh sharing.Share
		if err := sh.UnmarshalJSON(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		shares = append(shares, &sh)
	}
	if len(shares) == 0 {
		return fmt.Errorf("no share files (*.json) in %s", dir)
	}
	data, sum, err := sharing.Recover(shares)
	if err != nil {
		return err
	}
	if err := writeAtomic(out, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}); err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(map[string]any{"bytes": len(data), "shares": len(shares), "scheme": sum.Scheme.String(), "threshold": sum.Threshold, "total": sum.Shares, "out": out})
	}
	fmt.Fprintf(a.stdout, "recovered %d bytes from %d shares (%s, t=%d of n=%d) -> %s\n", len(data), len(shares), sum.Scheme, sum.Threshold, sum.Shares, out)
	return nil
}
