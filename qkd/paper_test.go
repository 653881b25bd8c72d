package qkd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
)

type table4 struct {
	Transmitted, Received, Sifted, Check, Key string
}

func loadTable4(t *testing.T) table4 {
	t.Helper()
	b, err := os.ReadFile("testdata/table4.json")
	if err != nil {
		t.Fatal(err)
	}
	var v table4
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// table4Records builds the transmission of Table 4: Alice sends the 64 raw
// bits, Bob receives them unchanged, and the bases agree exactly on the
// even (alternating) positions.
func table4Records(t *testing.T, v table4) (AliceRecord, BobRecord) {
	t.Helper()
	sent, err := ParseHex(v.Transmitted)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := ParseHex(v.Received)
	if err != nil {
		t.Fatal(err)
	}
	n := sent.Len()
	aliceBases, bobBases, det := NewBits(n), NewBits(n), NewBits(n)
	for i := 0; i < n; i++ {
		det.Set(i, 1)
		bobBases.Set(i, uint64(i%2)) // agree (0 = 0) on even positions only
	}
	return AliceRecord{Bits: sent, Bases: aliceBases}, BobRecord{Detected: det, Bases: bobBases, Results: recv}
}

func TestPaperTable4Golden(t *testing.T) {
	v := loadTable4(t)
	a, b := table4Records(t, v)
	r, err := Paper(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  *Bits
		want string
	}{
		{"sifted (RQT)", r.AliceSifted, v.Sifted},
		{"bob sifted", r.BobSifted, v.Sifted},
		{"check", r.AliceCheck, v.Check},
		{"key", r.Key, v.Key},
	} {
		if c.got.Hex() != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got.Hex(), c.want)
		}
	}
	if r.Key.Len() != 16 || r.AliceSifted.Len() != 32 || r.CheckErrors != 0 {
		t.Errorf("lengths: sifted %d key %d errors %d", r.AliceSifted.Len(), r.Key.Len(), r.CheckErrors)
	}
}

func TestPaperAbortsOnOneError(t *testing.T) {
	v := loadTable4(t)
	a, b := table4Records(t, v)
	b.Results.Flip(4) // even raw position 4 -> sifted position 2 -> a check bit
	_, err := Paper(a, b)
	if !errors.Is(err, ErrCheckFailed) || !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v, want ErrCheckFailed and ErrAborted", err)
	}
	// An error on a key position is NOT detected: the paper protocol has no
	// error correction, so Alice and Bob silently end with different keys.
	a, b = table4Records(t, v)
	b.Results.Flip(2) // sifted position 1 -> key bit 0
	r, err := Paper(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if r.BobSifted.Odd().Equal(r.Key) {
		t.Fatal("expected Bob's key half to differ silently")
	}
}

func TestPaperModeNoisyChannel(t *testing.T) {
	// 1024 qubits (the seed's size): ~256 check bits; with QBER 2.5% the
	// chance that all match is (0.975)^256 ~ 0.2%, so every attempt fails.
	cfg := testConfig("paper-noisy", 1024)
	cfg.Mode = ModePaper
	cfg.PaperAttempts = 5
	cfg.Channel.Noise = 0.05
	st, err := Run(cfg)
	if !errors.Is(err, ErrCheckFailed) || !st.Aborted || st.Attempts != 5 {
		t.Fatalf("noisy paper mode: err=%v stats=%+v", err, st)
	}
	// On a perfect channel it succeeds at once with ~n/4 key bits.
	cfg.Channel.Noise = 0
	st, err = Run(cfg)
	if err != nil || st.Attempts != 1 || st.OutputBits < 200 || st.OutputBits > 312 {
		t.Fatalf("clean paper mode: err=%v stats=%+v", err, st)
	}
}

func TestPaperModeEveAtSmallSize(t *testing.T) {
	// With the 16-bit key of Table 4 (64 qubits, ~16 check bits), an
	// eavesdropper on a quarter of the qubits goes unnoticed in a
	// noticeable fraction of runs: each intercepted check bit is wrong with
	// probability 1/4 only. Count undetected runs over many seeds.
	undetected := 0
	const runs = 200
	for i := 0; i < runs; i++ {
		cfg := testConfig(fmt.Sprintf("paper-eve-%d", i), 64)
		cfg.Mode, cfg.PaperAttempts, cfg.Channel.Eve, cfg.KeyBits = ModePaper, 1, 0.25, 8
		if _, err := Run(cfg); err == nil {
			undetected++
		}
	}
	// At the default 256-bit key size the same run issues nothing and
	// says so, rather than reporting a success without keys.
	cfg := testConfig("paper-small", 64)
	cfg.Mode = ModePaper
	if st, err := Run(cfg); !errors.Is(err, ErrTooFewBits) || st.Keys != 0 {
		t.Errorf("a 16-bit paper-mode key at 256-bit keys: %v, %d keys", err, st.Keys)
	}
	// P(no error on ~16 checks) = (1 - 1/16)^16 ~ 0.36.
	if undetected < runs/5 {
		t.Errorf("only %d of %d runs passed; expected ~36%%", undetected, runs)
	}
	t.Logf("Eve on 25%% of qubits undetected in %d of %d paper-mode runs", undetected, runs)
}

func TestPaperBadRecords(t *testing.T) {
	if _, err := Paper(AliceRecord{}, BobRecord{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty records: %v", err)
	}
	a, b := table4Records(t, loadTable4(t))
	b.Results = NewBits(10)
	if _, err := Paper(a, b); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("short results: %v", err)
	}
}
