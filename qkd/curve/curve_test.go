package curve

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"qledger/qkd"
)

var update = flag.Bool("update", false, "regenerate ../testdata/qkd-curve.png with the default sweep")

func smallConfig() Config {
	c := DefaultConfig()
	c.Qubits = 1 << 16
	c.Noise = []float64{0, 0.04, 0.1, 0.3}
	c.DistanceQubits = 1 << 17
	c.Distances = []float64{0, 25, 50, 150}
	c.Seed = []byte("curve-test")
	return c
}

func TestCompute(t *testing.T) {
	d, err := Compute(context.Background(), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Fraction) != 4 || len(d.Rate) != 4 || len(d.Stats) != 8 || len(d.RateTheory) == 0 {
		t.Fatalf("data sizes %d %d %d", len(d.Fraction), len(d.Rate), len(d.Stats))
	}
	// The fraction falls with the QBER, and 15% QBER yields nothing.
	if !(d.Fraction[0].Y > d.Fraction[1].Y && d.Fraction[1].Y > d.Fraction[2].Y) || !d.Fraction[3].Aborted {
		t.Errorf("fractions %+v", d.Fraction)
	}
	for _, p := range d.Fraction[:3] {
		if p.Y > qkd.AsymptoticFraction(p.X, 1) {
			t.Errorf("finite-key point %+v above the asymptotic bound", p)
		}
	}
	if !(d.Rate[0].Y > d.Rate[1].Y) || !d.Rate[3].Aborted {
		t.Errorf("rates %+v", d.Rate)
	}
	if d.MeanEfficiency < 1 || d.MeanEfficiency > 1.3 {
		t.Errorf("mean f %v", d.MeanEfficiency)
	}
}

func TestWritePNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curve.png")
	if _, err := WritePNG(context.Background(), path, smallConfig()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10000 {
		t.Fatalf("not a PNG (%d bytes): %v", len(b), err)
	}
	if _, err := WritePNG(context.Background(), filepath.Join(t.TempDir(), "no", "dir.png"), smallConfig()); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	if err := Render(io.Discard, Data{}, smallConfig()); err != nil {
		t.Errorf("empty data: %v", err)
	}
	c := smallConfig()
	c.Noise = nil
	if _, err := Compute(context.Background(), c); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty sweep: %v", err)
	}
}

// TestDocsPNG regenerates the documentation figure: go test ./qkd/curve -run DocsPNG -update
func TestDocsPNG(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate ../testdata/qkd-curve.png")
	}
	cfg := DefaultConfig()
	cfg.Seed = []byte("qledger docs 2026-11-22")
	d, err := WritePNG(context.Background(), "../testdata/qkd-curve.png", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.Stats {
		t.Logf("qubits %8d sifted %8d QBER %.4f secure %7d f %.3f aborted %v", s.Qubits, s.Sifted, s.QBER, s.SecureBits, s.Efficiency, s.Aborted)
	}
}
