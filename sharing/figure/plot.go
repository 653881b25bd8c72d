package figure

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws the three panels of Figure 4 side by side: split time,
// recovery time (both log scale, ms) and per-node storage (%) against n,
// one line per mode and threshold ratio.
func writePlot(path string, res *Results) error {
	panels := []struct {
		title, ylabel string
		log           bool
		value         func(Row) float64
	}{
		{"(a) split time", "ms", true, func(r Row) float64 { return r.SplitSeconds * 1e3 }},
		{"(b) recovery time", "ms", true, func(r Row) float64 { return r.RecoverSeconds * 1e3 }},
		{"(c) storage per node", "% of data", false, func(r Row) float64 { return 100 * r.Storage }},
	}
	plots := make([]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "n (node groups)"
		p.Y.Label.Text = pn.ylabel
		if pn.log {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		p.Legend.Top = true
		last := i == len(panels)-1
		for ri, ratio := range res.Config.Ratios {
			for mi, mode := range []string{"paper", "dispersal"} {
				var xys plotter.XYs
				for _, r := range res.Rows {
					if r.Mode == mode && r.Ratio == ratio {
						v := pn.value(r)
						if pn.log && v <= 0 {
							v = 1e-6
						}
						xys = append(xys, plotter.XY{X: float64(r.N), Y: v})
					}
				}
				if len(xys) == 0 {
					continue
				}
				line, points, err := plotter.NewLinePoints(xys)
				if err != nil {
					return fmt.Errorf("figure: plot: %w", err)
				}
				line.Color = plotutil.Color(ri)
				points.Color = plotutil.Color(ri)
				points.Shape = plotutil.Shape(mi)
				if mi == 1 {
					line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
				}
				p.Add(line, points)
			}
			if last {
				if err := addPublished(p, res.Rows, ratio, ri); err != nil {
					return err
				}
			}
		}
		if last {
			addLegend(p, res.Config.Ratios)
			p.Y.Min, p.Y.Max = 0, 1.8*p.Y.Max // room for the legend above the lines
		}
		plots[i] = p
	}
	const w, h = 30 * vg.Centimeter, 10 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Centimeter, PadTop: vg.Millimeter * 3,
		PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("figure: png: %w", err)
	}
	return f.Close()
}

// addPublished adds, to the storage panel, what SSDSM itself stores per
// node (residue and prime) for one ratio, as a dotted line.
func addPublished(p *plot.Plot, rows []Row, ratio float64, ri int) error {
	var xys plotter.XYs
	for _, r := range rows {
		if r.Mode == "paper" && r.Ratio == ratio {
			xys = append(xys, plotter.XY{X: float64(r.N), Y: 100 * r.PublishedStorage})
		}
	}
	if len(xys) == 0 {
		return nil
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("figure: plot: %w", err)
	}
	line.Color = plotutil.Color(ri)
	line.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
	p.Add(line)
	return nil
}

// addLegend explains colours (threshold ratios) and line styles (modes).
func addLegend(p *plot.Plot, ratios []float64) {
	style := func(c int, dashes []vg.Length) *plotter.Line {
		l := &plotter.Line{}
		l.LineStyle = draw.LineStyle{Color: plotutil.Color(c), Width: vg.Points(1.5), Dashes: dashes}
		return l
	}
	for ri, r := range ratios {
		p.Legend.Add(fmt.Sprintf("t/n = %.2f", r), style(ri, nil))
	}
	black := len(plotutil.SoftColors) // any index; recoloured below
	for _, e := range []struct {
		name   string
		dashes []vg.Length
	}{
		{"paper mode (o)", nil},
		{"dispersal ([])", []vg.Length{vg.Points(4), vg.Points(2)}},
		{"SSDSM as published", []vg.Length{vg.Points(1), vg.Points(2)}},
	} {
		l := style(black, e.dashes)
		l.Color = color.Black
		p.Legend.Add(e.name, l)
	}
}
