package bench

import (
	"slices"
	"testing"
)

func TestGrowthSizes(t *testing.T) {
	for _, c := range []struct {
		to, steps int
		want      []int
	}{
		{1_000_000, 4, []int{37037, 111111, 333333, 1_000_000}},
		{300, 2, []int{100, 300}},
		{2, 3, []int{1, 2}}, // sizes below one transaction collapse
	} {
		cfg := GrowthConfig{To: c.to, Steps: c.steps}
		if got := cfg.sizes(); !slices.Equal(got, c.want) {
			t.Errorf("sizes to %d in %d steps = %v, want %v", c.to, c.steps, got, c.want)
		}
	}
	if err := (GrowthConfig{To: 0, Steps: 1, Clients: 1, Payload: 1, Reads: 1, Binary: "q"}).Validate(); err == nil {
		t.Error("a run to 0 transactions validated")
	}
}
