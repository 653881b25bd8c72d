package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"qledger/api/client"
	"qledger/sharing"
)

func runData(args []string) error {
	return subcommand(args, "data", map[string]func([]string) error{
		"put": dataPut, "get": dataGet, "ls": dataLs, "export-shares": dataExport, "recover": dataRecover,
	}, []string{"put", "get", "ls", "export-shares", "recover"})
}

func dataPut(args []string) error {
	fs := flag.NewFlagSet("data put", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	var opt client.PutOptions
	fs.IntVar(&opt.Threshold, "threshold", 0, "t: any t shares recover the data [required]")
	fs.IntVar(&opt.Shares, "shares", 0, "n: number of shares, one per group 0..n-1 (default: every group)")
	fs.StringVar(&opt.Scheme, "mode", "dispersal", "dispersal (AES-GCM + Reed-Solomon, key shared with Asmuth-Bloom), paper (SSDSM's CRT scheme; not confidential) or asmuth-bloom (small secrets)")
	fs.StringVar(&opt.Description, "description", "", "description to find the item by")
	fs.StringVar(&opt.DataID, "id", "", "data ID (default: random)")
	readers := fs.String("readers", "", "comma-separated callers allowed to fetch the shares (default: anyone)")
	fs.StringVar(&opt.Caller, "caller", env("QLEDGER_CALLER", ""), "caller identity sent with the requests")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: qledger data put FILE --threshold T [--mode dispersal|paper|asmuth-bloom] [--readers a,b]")
	}
	if opt.Threshold < 1 {
		return fmt.Errorf("threshold t must be at least 1 (--threshold T), not %d", opt.Threshold)
	}
	in, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	opt.Readers = splitList(*readers)
	c, err := cf.client()
	if err != nil {
		return err
	}
	if st.Size() > 1<<20 && !cf.json {
		opt.Progress = func(done, total int) {
			fmt.Fprintf(os.Stderr, "\r  %s %d/%d segments", bar(done, total, 30), done, total)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*cf.timeout)
	defer cancel()
	start := time.Now()
	res, err := c.PutReader(ctx, in, opt)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(map[string]any{"data_id": res.DataID, "shares": res.Shares, "digest": res.Digest, "bytes": res.Length, "stored_bytes": res.Bytes, "receipts": res.Receipts})
	}
	el := time.Since(start)
	fmt.Printf("stored %s: %d bytes as %d shares (%s, any %d recover), %d bytes stored in all (%.1f%% of the data per share) in %s (%.1f MB/s)\n",
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

func dataGet(args []string) error {
	fs := flag.NewFlagSet("data get", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	out := fs.String("o", "", "write the data to this file [required]")
	caller := fs.String("caller", env("QLEDGER_CALLER", ""), "caller identity (must be on the item's reader list)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errors.New("usage: qledger data get ID -o FILE")
	}
	c, ctx, cancel, err := cf.connect(10)
	if err != nil {
		return err
	}
	defer cancel()
	start := time.Now()
	var rep client.GetReport
	err = writeAtomic(*out, func(f *os.File) error {
		rep, err = c.GetDataTo(ctx, f, pos[0], *caller)
		return err
	})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(map[string]any{"data_id": pos[0], "bytes": rep.Length, "groups_used": rep.Used, "groups_failed": rep.Failed, "digest_checked": rep.DigestChecked})
	}
	el := time.Since(start)
	digest := "digest checked"
	if !rep.DigestChecked {
		digest = "no digest recorded, so checked only by the scheme"
	}
	fmt.Printf("recovered %s: %d bytes from groups %v (shares and proofs verified, %s) in %s (%.1f MB/s) -> %s\n", pos[0], rep.Length, rep.Used, digest, el.Round(time.Millisecond), float64(rep.Length)/1e6/el.Seconds(), *out)
	printFailed(rep.Failed, "  group %d not used: %s\n")
	return nil
}

// printFailed prints a report's failed groups in order, one line each.
func printFailed(failed map[int]string, format string) {
	gs := make([]int, 0, len(failed))
	for g := range failed {
		gs = append(gs, g)
	}
	sort.Ints(gs)
	for _, g := range gs {
		fmt.Printf(format, g, failed[g])
	}
}

func dataLs(args []string) error {
	fs := flag.NewFlagSet("data ls", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	desc := fs.String("description", "", "only items whose description contains this")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	l, err := c.ListData(ctx, *desc)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(l)
	}
	for _, it := range l.Items {
		fmt.Printf("%s  %-12s t=%d n=%d  groups %v  %q\n", it.DataID, it.Scheme, it.Threshold, it.Shares, it.Groups, it.Description)
	}
	if len(l.Unreachable) > 0 {
		fmt.Printf("(groups %v did not answer)\n", l.Unreachable)
	}
	return nil
}

// dataExport writes every share it can fetch and verify as a JSON file.
func dataExport(args []string) error {
	fs := flag.NewFlagSet("data export-shares", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	caller := fs.String("caller", env("QLEDGER_CALLER", ""), "caller identity")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: qledger data export-shares ID DIR")
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
	shares, rep, err := c.FetchShares(ctx, pos[0], *caller, len(st.Groups))
	if err != nil && len(shares) == 0 {
		return err
	}
	if err := os.MkdirAll(pos[1], 0o700); err != nil {
		return err
	}
	for _, sh := range shares {
		b, err := sh.MarshalJSON()
		if err != nil {
			return err
		}
		p := filepath.Join(pos[1], fmt.Sprintf("%s.share-%d.json", pos[0], sh.Index))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		fmt.Println("wrote", p)
	}
	printFailed(rep.Failed, "group %d: not exported: %s\n")
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: the shares exported do not suffice: %v\n", err)
	}
	return nil
}

// dataRecover recovers data offline from exported share files.
func dataRecover(args []string) error {
	fs := flag.NewFlagSet("data recover", flag.ExitOnError)
	out := fs.String("o", "", "write the data to this file [required]")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errors.New("usage: qledger data recover DIR -o FILE")
	}
	files, err := filepath.Glob(filepath.Join(pos[0], "*.json"))
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
		return fmt.Errorf("no share files (*.json) in %s", pos[0])
	}
	data, sum, err := sharing.Recover(shares)
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("recovered %d bytes from %d shares (%s, t=%d of n=%d) -> %s\n", len(data), len(shares), sum.Scheme, sum.Threshold, sum.Shares, *out)
	return nil
}
