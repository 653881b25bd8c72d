package figure

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"qledger/sharing"
)

// Results is everything Run measured.
type Results struct {
	Config Config
	Rows   []Row
	// FirstSplit is the first paper-mode split of the run, which also
	// derives that family's public primes (once per process).
	FirstSplit time.Duration
	// Storage holds the two modes at (TargetT, TargetN).
	Storage []Row
	// DigitsTarget is the paper-mode recovery of the Digits-digit number at
	// (TargetT, TargetN); DigitsWorst the slowest over the figure grid.
	DigitsTarget, DigitsWorst Digits
	Throughput                Throughput
}

// Run measures the figure and the targets, writes figure4.csv,
// figure4.png and summary.txt into outDir (created if needed) and prints
// the summary to w.
func Run(cfg Config, outDir string, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := Measure(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	if err := writeCSV(filepath.Join(outDir, "figure4.csv"), res.Rows); err != nil {
		return err
	}
	if err := writePlot(filepath.Join(outDir, "figure4.png"), res); err != nil {
		return err
	}
	var sum bytes.Buffer
	if err := writeSummary(&sum, res); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "summary.txt"), sum.Bytes(), 0o644); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	if _, err := w.Write(sum.Bytes()); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	return nil
}

// Measure runs the measurements without writing anything.
func Measure(cfg Config) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.effective()
	res := &Results{Config: cfg}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x51ed))
	data := make([]byte, cfg.DataSize)
	fill(data, rng)

	start := time.Now()
	if _, _, err := sharing.Split(data, sharing.Options{Scheme: sharing.Paper, Threshold: 1, Shares: maxN(cfg)}); err != nil {
		return nil, err
	}
	res.FirstSplit = time.Since(start)

	for _, n := range cfg.Ns {
		for _, ratio := range cfg.Ratios {
			t := thresholdFor(ratio, n)
			for _, mode := range []sharing.Scheme{sharing.Paper, sharing.Dispersal} {
				row, err := measurePoint(mode, data, t, n, cfg.SegmentSize, cfg.Repeats, rng)
				if err != nil {
					return nil, fmt.Errorf("figure: %v (t=%d, n=%d): %w", mode, t, n, err)
				}
				row.Ratio = ratio
				res.Rows = append(res.Rows, row)
			}
		}
	}
	for _, mode := range []sharing.Scheme{sharing.Paper, sharing.Dispersal} {
		row, err := measurePoint(mode, data, cfg.TargetT, cfg.TargetN, cfg.SegmentSize, 1, rng)
		if err != nil {
			return nil, fmt.Errorf("figure: storage target: %w", err)
		}
		row.Ratio = float64(cfg.TargetT) / float64(cfg.TargetN)
		res.Storage = append(res.Storage, row)
	}

	num := digitsNumber(cfg.Digits, rng)
	var err error
	if res.DigitsTarget, err = measureDigits(num, cfg.TargetT, cfg.TargetN, cfg.DigitsRepeats, rng); err != nil {
		return nil, err
	}
	for _, n := range cfg.Ns {
		for _, ratio := range cfg.Ratios {
			d, err := measureDigits(num, thresholdFor(ratio, n), n, cfg.DigitsRepeats, rng)
			if err != nil {
				return nil, err
			}
			if d.Seconds > res.DigitsWorst.Seconds {
				res.DigitsWorst = d
			}
		}
	}

	big := make([]byte, cfg.ThroughputSize)
	fill(big, rng)
	if res.Throughput, err = measureThroughput(big, cfg.TargetT, cfg.TargetN, cfg.SegmentSize, cfg.ThroughputRepeats, rng); err != nil {
		return nil, fmt.Errorf("figure: throughput: %w", err)
	}
	return res, nil
}

func fill(b []byte, rng *rand.Rand) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

func maxN(cfg Config) int {
	m := cfg.TargetN
	for _, n := range cfg.Ns {
		m = max(m, n)
	}
	return m
}

var csvHeader = []string{
	"mode", "n", "t", "t_over_n", "data_bytes", "split_ms", "recover_ms",
	"storage_per_node", "payload_per_node", "paper_published_per_node",
}

func writeCSV(path string, rows []Row) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(csvHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	for _, r := range rows {
		pub := ""
		if r.PublishedStorage > 0 {
			pub = f(r.PublishedStorage)
		}
		cw.Write([]string{
			r.Mode, strconv.Itoa(r.N), strconv.Itoa(r.T), f(r.Ratio), strconv.Itoa(r.DataBytes),
			f(r.SplitSeconds * 1e3), f(r.RecoverSeconds * 1e3),
			f(r.Storage), f(r.PayloadStorage), pub,
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("figure: csv: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func writeSummary(w io.Writer, res *Results) error {
	cfg := res.Config
	fmt.Fprintf(w, "SSDSM Figure 4 with qledger/sharing: %d bytes of random data, median of %d runs\n", cfg.DataSize, cfg.Repeats)
	fmt.Fprintf(w, "first paper split (derives %d public %d-bit primes): %.1f ms\n\n",
		maxN(cfg), 512, res.FirstSplit.Seconds()*1e3)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tn\tt\tt/n\tsplit ms\trecover ms\tstorage/node\tpayload/node\tSSDSM-style\t")
	for _, r := range res.Rows {
		pub := "-"
		if r.PublishedStorage > 0 {
			pub = pct(r.PublishedStorage)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.3f\t%.3f\t%s\t%s\t%s\t\n", r.Mode, r.N, r.T, r.Ratio,
			r.SplitSeconds*1e3, r.RecoverSeconds*1e3, pct(r.Storage), pct(r.PayloadStorage), pub)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTargets at (t, n) = (%d, %d)\n", cfg.TargetT, cfg.TargetN)
	for _, r := range res.Storage {
		line := fmt.Sprintf("  per-node storage, %s, %d bytes: %s (payload %s)", r.Mode, r.DataBytes, pct(r.Storage), pct(r.PayloadStorage))
		if r.Mode == sharing.Dispersal.String() {
			line += fmt.Sprintf("; target <= 7.7%%: %s; SSDSM reports 13.5%%", verdict(r.Storage <= 0.077))
		} else {
			line += fmt.Sprintf("; SSDSM-style with the prime stored: %s", pct(r.PublishedStorage))
		}
		fmt.Fprintln(w, line)
	}
	d, dw := res.DigitsTarget, res.DigitsWorst
	fmt.Fprintf(w, "  paper-mode recovery of a %d-digit number (%d bytes): %.4f ms; target < 0.1 ms: %s (SSDSM: < 10 ms in Python)\n",
		cfg.Digits, d.Bytes, d.Seconds*1e3, verdict(d.Seconds < 1e-4))
	fmt.Fprintf(w, "    slowest over the grid: %.4f ms at (t, n) = (%d, %d)\n", dw.Seconds*1e3, dw.T, dw.N)
	tp := res.Throughput
	mb := func(sec float64) float64 { return float64(tp.Bytes) / sec / 1e6 }
	fmt.Fprintf(w, "  dispersal, %d MiB, median of %d alternating runs (best in brackets):\n", tp.Bytes>>20, cfg.ThroughputRepeats)
	fmt.Fprintf(w, "    split:    %7.0f MB/s [%5.0f]  AES-GCM+RS alone %7.0f MB/s [%5.0f]  ratio %.2f; target >= 0.50: %s\n",
		mb(tp.SplitSeconds), mb(tp.BestSplit), mb(tp.BaseSplitSeconds), mb(tp.BestBaseSplit), tp.SplitRatio(), verdict(tp.SplitRatio() >= 0.5))
	fmt.Fprintf(w, "    recovery: %7.0f MB/s [%5.0f]  AES-GCM+RS alone %7.0f MB/s [%5.0f]  ratio %.2f; target >= 0.50: %s\n",
		mb(tp.RecoverSeconds), mb(tp.BestRecover), mb(tp.BaseRecoverSeconds), mb(tp.BestBaseRecover), tp.RecoverRatio(), verdict(tp.RecoverRatio() >= 0.5))
	return nil
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + "%" }
