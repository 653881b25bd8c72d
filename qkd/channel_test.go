package qkd

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestChannelValidate(t *testing.T) {
	bad := []Channel{
		{Noise: -0.1, DetectorEfficiency: 1},
		{Noise: 1.5, DetectorEfficiency: 1},
		{Noise: math.NaN(), DetectorEfficiency: 1},
		{Eve: 2, DetectorEfficiency: 1},
		{DistanceKM: -1, DetectorEfficiency: 1},
		{DistanceKM: math.Inf(1), DetectorEfficiency: 1},
		{DetectorEfficiency: 0},
		{DetectorEfficiency: 1, DarkCount: 1},
		{DetectorEfficiency: 1, AttenuationDBPerKM: -0.2},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", c, err)
		}
		if _, _, err := Simulate(c, 10, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Simulate(%+v) = %v", c, err)
		}
	}
	if _, _, err := Simulate(DefaultChannel(), -1, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Simulate(-1) = %v", err)
	}
}

func TestSimulateMatchesModel(t *testing.T) {
	n := scale(1<<20, 1<<17)
	cases := []Channel{
		{Noise: 0.04, DetectorEfficiency: 1},
		{Noise: 0.02, DistanceKM: 50, AttenuationDBPerKM: 0.2, DetectorEfficiency: 0.5, DarkCount: 1e-4},
		{Eve: 0.5, DetectorEfficiency: 1},
		{Noise: 0.1, Eve: 0.2, DetectorEfficiency: 0.8, DarkCount: 1e-3},
	}
	for i, c := range cases {
		a, b, err := Simulate(c, n, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		det := b.Detected.OnesCount()
		wantDet := c.DetectionProb() * float64(n)
		if math.Abs(float64(det)-wantDet) > 5*math.Sqrt(wantDet)+1 {
			t.Errorf("case %d: %d detections, model %.0f", i, det, wantDet)
		}
		m := siftMask(a, b)
		q := float64(a.Bits.Select(m).Distance(b.Results.Select(m))) / float64(m.OnesCount())
		sd := math.Sqrt(c.ModelQBER() * (1 - c.ModelQBER()) / float64(m.OnesCount()))
		if math.Abs(q-c.ModelQBER()) > 5*sd+1e-4 {
			t.Errorf("case %d: true QBER %.5f, model %.5f (sd %.5f)", i, q, c.ModelQBER(), sd)
		}
	}
}

func TestSimulateDeterministic(t *testing.T) {
	c := Channel{Noise: 0.05, Eve: 0.1, DetectorEfficiency: 0.9, DarkCount: 1e-3}
	a1, b1, _ := Simulate(c, 5000, []byte("same"))
	a2, b2, _ := Simulate(c, 5000, []byte("same"))
	a3, _, _ := Simulate(c, 5000, []byte("other"))
	if !a1.Bits.Equal(a2.Bits) || !b1.Results.Equal(b2.Results) || !b1.Detected.Equal(b2.Detected) {
		t.Fatal("same seed, different transmission")
	}
	if a1.Bits.Equal(a3.Bits) {
		t.Fatal("different seeds, same bits")
	}
	// Without a seed, crypto/rand: two runs differ.
	a4, _, _ := Simulate(c, 5000, nil)
	a5, _, _ := Simulate(c, 5000, nil)
	if a4.Bits.Equal(a5.Bits) {
		t.Fatal("crypto/rand runs are equal")
	}
}

// TestQBEREstimate: the protocol's sampled QBER is within one percentage
// point of the model for depolarizing p in {0, 2%, 5%, 8%}.
func TestQBEREstimate(t *testing.T) {
	for _, p := range []float64{0, 0.02, 0.05, 0.08} {
		cfg := testConfig("qber", scale(1<<19, 1<<17))
		cfg.Channel.Noise = p
		st, err := Run(cfg)
		if err != nil {
			t.Fatalf("p=%v: %v", p, err)
		}
		if math.Abs(st.QBER-st.ModelQBER) > 0.01 || st.ModelQBER != p/2 {
			t.Errorf("p=%v: estimate %.4f, model %.4f", p, st.QBER, st.ModelQBER)
		}
		if st.Keys == 0 && p <= 0.05 {
			t.Errorf("p=%v: no keys: %+v", p, st)
		}
	}
}

func TestEveEveryQubitAborts(t *testing.T) {
	cfg := testConfig("eve-all", scale(1<<19, 1<<17))
	cfg.Channel.Eve = 1
	l, err := NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := l.Next(context.Background())
	if !errors.Is(err, ErrAborted) || !errors.Is(err, ErrQBERTooHigh) {
		t.Fatalf("err = %v, want ErrAborted+ErrQBERTooHigh", err)
	}
	st := blk.Stats
	if math.Abs(st.QBER-0.25) > 0.01 {
		t.Errorf("QBER %.4f, want 25%% +- 1%%", st.QBER)
	}
	if len(blk.Keys) != 0 || st.Keys != 0 || st.OutputBits != 0 || !st.Aborted {
		t.Errorf("aborted block issued keys: %+v", st)
	}
	if st.AbortReason == "" || !containsAll(st.AbortReason, "QBER", "25.", "threshold") {
		t.Errorf("abort reason %q is not clear", st.AbortReason)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func TestEvePartialYieldsShorterKey(t *testing.T) {
	base := testConfig("eve-20", scale(1<<19, 1<<18))
	clean, err := Run(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := base
	cfg.Channel.Eve = 0.2
	st, err := Run(cfg)
	if err != nil {
		t.Fatalf("20%% intercept-resend aborted: %v", err)
	}
	if math.Abs(st.QBER-0.05) > 0.01 {
		t.Errorf("QBER %.4f, want ~5%%", st.QBER)
	}
	if st.SecureBits <= 0 || st.SecureBits >= clean.SecureBits || st.Keys >= clean.Keys {
		t.Errorf("key with Eve %d bits (%d keys), without %d bits (%d keys)", st.SecureBits, st.Keys, clean.SecureBits, clean.Keys)
	}
	t.Logf("secure bits: clean %d, Eve 20%% %d (QBER %.2f%%)", clean.SecureBits, st.SecureBits, 100*st.QBER)
}
