package figure

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunQuick(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Quick = true
	var out bytes.Buffer
	if err := Run(cfg, dir, &out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "figure4.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// 2 n values x 2 ratios x 2 modes, plus the header.
	if len(recs) != 9 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("csv: %d records, header %v", len(recs), recs[0])
	}
	png, err := os.ReadFile(filepath.Join(dir, "figure4.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("png: %v", err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if err != nil || !bytes.Equal(sum, out.Bytes()) {
		t.Fatalf("summary.txt: %v", err)
	}
	for _, want := range []string{"paper", "dispersal", "per-node storage", "1000-digit", "AES-GCM+RS alone", "ratio"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*Config){
		"no n":       func(c *Config) { c.Ns = nil },
		"n = 0":      func(c *Config) { c.Ns = []int{0} },
		"n = 256":    func(c *Config) { c.Ns = []int{256} },
		"ratio 0":    func(c *Config) { c.Ratios = []float64{0} },
		"ratio 1.5":  func(c *Config) { c.Ratios = []float64{1.5} },
		"no ratio":   func(c *Config) { c.Ratios = nil },
		"data":       func(c *Config) { c.DataSize = 0 },
		"repeats":    func(c *Config) { c.Repeats = 0 },
		"digits":     func(c *Config) { c.Digits = 0 },
		"throughput": func(c *Config) { c.ThroughputSize = 0 },
		"target":     func(c *Config) { c.TargetT = 21 },
		"segment":    func(c *Config) { c.SegmentSize = -1 },
	} {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
		if err := Run(c, t.TempDir(), &bytes.Buffer{}); !errors.Is(err, ErrConfig) {
			t.Errorf("Run %s: %v", name, err)
		}
	}
}

func TestRunUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Quick = true
	if err := Run(cfg, filepath.Join(file, "sub"), &bytes.Buffer{}); err == nil {
		t.Fatal("Run into a path under a file succeeded")
	}
}

func TestThresholdFor(t *testing.T) {
	for _, c := range []struct {
		r    float64
		n, t int
	}{{0.3, 10, 3}, {0.5, 10, 5}, {0.75, 10, 8}, {0.75, 20, 15}, {0.3, 50, 15}, {0.75, 50, 38}, {0.01, 10, 1}, {1, 7, 7}} {
		if got := thresholdFor(c.r, c.n); got != c.t {
			t.Errorf("thresholdFor(%v, %d) = %d, want %d", c.r, c.n, got, c.t)
		}
	}
}

// TestBaseline checks that the baseline really encrypts and decodes.
func TestBaseline(t *testing.T) {
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b, err := NewBaseline(3, 5, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Split(data); err != nil {
		t.Fatal(err)
	}
	if err := b.Store(data); err != nil {
		t.Fatal(err)
	}
	for _, idx := range [][]int{{0, 1, 2}, {2, 3, 4}, {4, 0, 3}} {
		if err := b.Recover(idx); err != nil {
			t.Fatalf("%v: %v", idx, err)
		}
	}
	b.stored[0][4][0] ^= 1
	if err := b.Recover([]int{2, 3, 4}); err == nil {
		t.Fatal("corrupted shard decrypted")
	}
	if _, err := NewBaseline(0, 5, 4096); err == nil {
		t.Fatal("t = 0 accepted")
	}
}

// TestFigure4 runs the full measurement when QLEDGER_FIGURE_OUT names an
// output directory (until `qledger bench sharing --out DIR` calls Run):
//
//	QLEDGER_FIGURE_OUT=/tmp/fig4 go test -run TestFigure4 -timeout 30m -v ./sharing/figure
func TestFigure4(t *testing.T) {
	dir := os.Getenv("QLEDGER_FIGURE_OUT")
	if dir == "" {
		t.Skip("set QLEDGER_FIGURE_OUT to run the full figure")
	}
	var out bytes.Buffer
	if err := Run(DefaultConfig(), dir, &out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}
