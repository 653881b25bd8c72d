// Package curve measures and plots the BB84 engine of package qkd: the
// secret-key fraction against the QBER, with the simulated finite-key
// points beside the asymptotic 1 - h(Q) - f h(Q), and the key rate against
// fiber length. It is the library behind `qledger qkd curve`.
package curve

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"qledger/qkd"
)

// ErrInvalidConfig reports a bad Config.
var ErrInvalidConfig = errors.New("qkd/curve: invalid config")

// Config chooses the sweeps.
type Config struct {
	// Base is the protocol configuration of every block (Qubits, Channel
	// and Seed are overridden per point).
	Base qkd.Config
	// Qubits per block of the QBER sweep.
	Qubits int
	// Noise lists the depolarizing probabilities p of the QBER sweep
	// (QBER = p/2).
	Noise []float64
	// DistanceQubits per block of the distance sweep.
	DistanceQubits int
	// Distances in km.
	Distances []float64
	// Device is the channel of the distance sweep (noise, detector,
	// dark counts); DistanceKM is set per point.
	Device qkd.Channel
	// Efficiencies f drawn as theory curves (the measured mean f is added).
	Efficiencies []float64
	// Seed makes the sweep reproducible (nil: crypto/rand).
	Seed []byte
	// Width and Height of the PNG.
	Width, Height vg.Length
}

// DefaultConfig sweeps QBER 0..12% with 2^20-qubit blocks and 0..200 km
// with 2^24-qubit blocks over a device with 60% detector efficiency, 1e-7
// dark counts per pulse and 1% intrinsic QBER.
func DefaultConfig() Config {
	c := Config{Base: qkd.DefaultConfig(), Qubits: 1 << 20, DistanceQubits: 1 << 24,
		Efficiencies: []float64{1}, Width: 28 * vg.Centimeter, Height: 11 * vg.Centimeter}
	for p := 0.0; p <= 0.24+1e-9; p += 0.02 {
		c.Noise = append(c.Noise, math.Round(p*1000)/1000)
	}
	for d := 0.0; d <= 200+1e-9; d += 10 {
		c.Distances = append(c.Distances, d)
	}
	c.Device = qkd.Channel{Noise: 0.02, AttenuationDBPerKM: 0.2, DetectorEfficiency: 0.6, DarkCount: 1e-7}
	return c
}

// Validate checks the sweeps.
func (c Config) Validate() error {
	if c.Qubits < 1 || c.DistanceQubits < 1 || len(c.Noise) == 0 || len(c.Distances) == 0 || c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("%w: empty sweep or size", ErrInvalidConfig)
	}
	if err := c.Device.Validate(); err != nil {
		return fmt.Errorf("%w: device: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Point is one measured or computed point.
type Point struct {
	X, Y float64
	// Aborted marks a simulated block that produced no key.
	Aborted bool
}

// Data is what the plot shows.
type Data struct {
	// Fraction: measured QBER -> secure bits / sifted bits, one per block.
	Fraction []Point
	// Rate: distance km -> secure bits per sent pulse, one per block.
	Rate []Point
	// RateTheory: distance km -> asymptotic bits per pulse with the
	// device's model QBER and the measured f.
	RateTheory []Point
	// MeanEfficiency is the mean Cascade f over blocks that corrected
	// errors.
	MeanEfficiency float64
	// Stats holds every block's statistics (QBER sweep, then distance).
	Stats []qkd.Stats
}

// Compute runs the sweeps.
func Compute(ctx context.Context, cfg Config) (Data, error) {
	if err := cfg.Validate(); err != nil {
		return Data{}, err
	}
	var d Data
	var fsum float64
	var fn int
	run := func(ch qkd.Channel, qubits int, tag string) (qkd.Stats, error) {
		c := cfg.Base
		c.Qubits, c.Channel = qubits, ch
		if cfg.Seed != nil {
			c.Seed = append(append([]byte(nil), cfg.Seed...), tag...)
		}
		st, err := qkd.RunContext(ctx, c)
		if err != nil && !errors.Is(err, qkd.ErrAborted) {
			return st, err
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		d.Stats = append(d.Stats, st)
		if st.CorrectedErrors > 0 && st.Efficiency > 0 {
			fsum += st.Efficiency
			fn++
		}
		return st, nil
	}
	for i, p := range cfg.Noise {
		ch := qkd.DefaultChannel()
		ch.Noise = p
		st, err := run(ch, cfg.Qubits, fmt.Sprintf("/qber/%d", i))
		if err != nil {
			return d, err
		}
		pt := Point{X: st.QBER, Aborted: st.Aborted}
		if st.Sifted > 0 && !st.Aborted {
			pt.Y = float64(st.SecureBits) / float64(st.Sifted)
		}
		d.Fraction = append(d.Fraction, pt)
	}
	for i, km := range cfg.Distances {
		ch := cfg.Device
		ch.DistanceKM = km
		// Send enough pulses for about 2^21 detections, at most DistanceQubits.
		qubits := cfg.DistanceQubits
		if want := math.Ceil((1 << 21) / ch.DetectionProb()); want < float64(qubits) {
			qubits = int(want)
		}
		st, err := run(ch, qubits, fmt.Sprintf("/km/%d", i))
		if err != nil {
			return d, err
		}
		d.Rate = append(d.Rate, Point{X: km, Y: float64(st.SecureBits) / float64(qubits), Aborted: st.Aborted || st.SecureBits == 0})
	}
	d.MeanEfficiency = 1.16
	if fn > 0 {
		d.MeanEfficiency = fsum / float64(fn)
	}
	for km := 0.0; km <= cfg.Distances[len(cfg.Distances)-1]+1e-9; km += 2 {
		ch := cfg.Device
		ch.DistanceKM = km
		r := ch.DetectionProb() / 2 * qkd.AsymptoticFraction(ch.ModelQBER(), d.MeanEfficiency)
		if r > 0 {
			d.RateTheory = append(d.RateTheory, Point{X: km, Y: r})
		}
	}
	return d, nil
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// Render draws the two panels as a PNG.
func Render(w io.Writer, d Data, cfg Config) error {
	left, err := fractionPlot(d, cfg)
	if err != nil {
		return err
	}
	right, err := ratePlot(d, cfg)
	if err != nil {
		return err
	}
	img := vgimg.New(cfg.Width, cfg.Height)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	cs := plot.Align([][]*plot.Plot{{left, right}}, t, dc)
	left.Draw(cs[0][0])
	right.Draw(cs[0][1])
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("qkd/curve: write png: %w", err)
	}
	return nil
}

func fractionPlot(d Data, cfg Config) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Secret-key fraction vs QBER"
	p.X.Label.Text = "QBER"
	p.Y.Label.Text = "secret bits / sifted bit"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 0.13, 0, 1
	p.Add(plotter.NewGrid())
	effs := append(append([]float64(nil), cfg.Efficiencies...), d.MeanEfficiency)
	for i, f := range effs {
		fn := plotter.NewFunction(func(q float64) float64 { return qkd.AsymptoticFraction(q, f) })
		fn.Color = palette[(i+1)%len(palette)]
		fn.Width = vg.Points(1.5)
		if i == len(effs)-1 {
			fn.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Legend.Add(fmt.Sprintf("1 - h(Q) - f h(Q), f = %.2f (measured)", f), fn)
		} else {
			p.Legend.Add(fmt.Sprintf("1 - h(Q) - f h(Q), f = %.2f", f), fn)
		}
		p.Add(fn)
	}
	var pts, ab plotter.XYs
	for _, pt := range d.Fraction {
		if pt.X > p.X.Max {
			continue
		}
		if pt.Aborted {
			ab = append(ab, plotter.XY{X: pt.X, Y: 0})
		} else {
			pts = append(pts, plotter.XY{X: pt.X, Y: pt.Y})
		}
	}
	if err := addScatter(p, pts, palette[0], draw.CircleGlyph{}, fmt.Sprintf("simulated, finite key (%d qubits)", cfg.Qubits)); err != nil {
		return nil, err
	}
	if err := addScatter(p, ab, palette[1], draw.CrossGlyph{}, "aborted: no key"); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	return p, nil
}

func ratePlot(d Data, cfg Config) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Key rate vs distance"
	p.X.Label.Text = fmt.Sprintf("fiber length (km, %.2g dB/km; detector %.0f%%, dark %.0e, QBER %.1f%% at 0 km)",
		cfg.Device.AttenuationDBPerKM, 100*cfg.Device.DetectorEfficiency, cfg.Device.DarkCount, 100*cfg.Device.ModelQBER())
	p.Y.Label.Text = "secret bits per pulse"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var th, sim plotter.XYs
	for _, pt := range d.RateTheory {
		th = append(th, plotter.XY{X: pt.X, Y: pt.Y})
	}
	for _, pt := range d.Rate {
		if !pt.Aborted && pt.Y > 0 {
			sim = append(sim, plotter.XY{X: pt.X, Y: pt.Y})
		}
	}
	if len(th) > 1 {
		l, err := plotter.NewLine(th)
		if err != nil {
			return nil, fmt.Errorf("qkd/curve: %w", err)
		}
		l.Color, l.Width = palette[1], vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("asymptotic, f = %.2f", d.MeanEfficiency), l)
	}
	if err := addScatter(p, sim, palette[0], draw.CircleGlyph{}, "simulated, finite key"); err != nil {
		return nil, err
	}
	if len(th) < 2 && len(sim) == 0 {
		// Nothing positive to show on a log axis: keep the axis drawable.
		p.Y.Min, p.Y.Max = 1e-6, 1
		p.X.Min, p.X.Max = 0, 1
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	return p, nil
}

func addScatter(p *plot.Plot, xys plotter.XYs, c color.Color, g draw.GlyphDrawer, label string) error {
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("qkd/curve: %w", err)
	}
	s.GlyphStyle.Color, s.GlyphStyle.Shape, s.GlyphStyle.Radius = c, g, vg.Points(3)
	p.Add(s)
	p.Legend.Add(label, s)
	return nil
}

// WritePNG computes the sweeps and writes the plot to path: the function
// behind `qledger qkd curve --out FILE.png`.
func WritePNG(ctx context.Context, path string, cfg Config) (Data, error) {
	d, err := Compute(ctx, cfg)
	if err != nil {
		return d, err
	}
	f, err := os.Create(path)
	if err != nil {
		return d, fmt.Errorf("qkd/curve: %w", err)
	}
	if err := Render(f, d, cfg); err != nil {
		f.Close()
		return d, err
	}
	if err := f.Close(); err != nil {
		return d, fmt.Errorf("qkd/curve: %w", err)
	}
	return d, nil
}
