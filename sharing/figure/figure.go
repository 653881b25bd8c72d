// Package figure reproduces Figure 4 of the SSDSM paper with package
// sharing: for n = 10..50 node groups and threshold ratios t/n, the split
// time, recovery time and per-node storage of the paper's CRT mode and of
// the dispersal mode on the same data, plus the targets set in issue 6:
//
//   - (15,20) per-node storage <= 7.7% in dispersal mode (SSDSM: 13.5%);
//   - paper-mode recovery of a 1,000-digit number in under 0.1 ms (SSDSM:
//     under 10 ms in Python);
//   - dispersal split and recovery of 64 MiB at >= 50% of the throughput of
//     AES-256-GCM + Reed-Solomon alone, measured in the same run.
//
// Run writes figure4.csv, figure4.png and summary.txt and prints the
// summary. Timings are medians; nothing is asserted about them.
package figure

import (
	"errors"
	"fmt"
)

// Config says what to measure.
type Config struct {
	// Ns are the numbers of shares (node groups), n.
	Ns []int
	// Ratios are the threshold ratios t/n; t = round(ratio*n), at least 1.
	Ratios []float64
	// DataSize is the size in bytes of the data split for the figure (the
	// same random data for both modes).
	DataSize int
	// Repeats is how many times each figure point is timed (median).
	Repeats int
	// Digits is the size, in decimal digits, of the number whose paper-mode
	// recovery is timed (the paper's 1,000).
	Digits int
	// DigitsRepeats is how many times that recovery is timed (median).
	DigitsRepeats int
	// ThroughputSize is the data size in bytes for the dispersal versus
	// AES-GCM + Reed-Solomon throughput comparison.
	ThroughputSize int
	// ThroughputRepeats is how many times each throughput run is repeated;
	// runs of the two sides alternate and medians are compared.
	ThroughputRepeats int
	// TargetT and TargetN are the (t, n) of the storage, digits and
	// throughput targets.
	TargetT, TargetN int
	// SegmentSize is the dispersal segment size (0: the package default).
	SegmentSize int
	// Seed makes the data and the choice of recovery subsets reproducible.
	Seed uint64
	// Quick shrinks every size and repeat count so that Run takes well under
	// a second; for tests.
	Quick bool
}

// DefaultConfig is the full measurement: n = 10, 20, 30, 40, 50; t/n = 0.3,
// 0.5, 0.75; 1 MiB of data; 64 MiB for throughput; targets at (15, 20).
func DefaultConfig() Config {
	return Config{
		Ns:                []int{10, 20, 30, 40, 50},
		Ratios:            []float64{0.3, 0.5, 0.75},
		DataSize:          1 << 20,
		Repeats:           5,
		Digits:            1000,
		DigitsRepeats:     201,
		ThroughputSize:    64 << 20,
		ThroughputRepeats: 5,
		TargetT:           15,
		TargetN:           20,
		Seed:              1,
	}
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("figure: invalid config")

// Validate reports whether the configuration can be run.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Ns) == 0 || len(c.Ratios) == 0 {
		return bad("no n or no ratio")
	}
	for _, n := range c.Ns {
		if n < 1 || n > 255 {
			return bad("n = %d", n)
		}
	}
	for _, r := range c.Ratios {
		if !(r > 0 && r <= 1) {
			return bad("ratio %v", r)
		}
	}
	switch {
	case c.DataSize < 1:
		return bad("data size %d", c.DataSize)
	case c.Repeats < 1 || c.DigitsRepeats < 1 || c.ThroughputRepeats < 1:
		return bad("repeats must be at least 1")
	case c.Digits < 1 || c.Digits > 100_000:
		return bad("digits %d", c.Digits)
	case c.ThroughputSize < 1:
		return bad("throughput size %d", c.ThroughputSize)
	case c.TargetN < 1 || c.TargetN > 255 || c.TargetT < 1 || c.TargetT > c.TargetN:
		return bad("target (t, n) = (%d, %d)", c.TargetT, c.TargetN)
	case c.SegmentSize < 0:
		return bad("segment size %d", c.SegmentSize)
	}
	return nil
}

// effective applies Quick.
func (c Config) effective() Config {
	if !c.Quick {
		return c
	}
	c.Ns = c.Ns[:min(2, len(c.Ns))]
	c.Ratios = []float64{c.Ratios[0], c.Ratios[len(c.Ratios)-1]}
	c.DataSize = min(c.DataSize, 16<<10)
	c.Repeats = 1
	c.DigitsRepeats = min(c.DigitsRepeats, 5)
	c.ThroughputSize = min(c.ThroughputSize, 256<<10)
	c.ThroughputRepeats = 1
	return c
}

// thresholdFor is t = round(ratio*n), at least 1.
func thresholdFor(ratio float64, n int) int {
	t := int(ratio*float64(n) + 0.5)
	return max(1, min(n, t))
}
