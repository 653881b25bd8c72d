package qkd_test

import (
	"context"
	"errors"
	"fmt"

	"qledger/qkd"
)

// The seed paper's Table 4: 64 raw bits, bases agreeing on the alternating
// positions, the even half of the sifted string published, the odd half kept.
func ExamplePaper() {
	raw, _ := qkd.ParseHex("608918c0659e33dc")
	n := raw.Len()
	aliceBases, bobBases, detected := qkd.NewBits(n), qkd.NewBits(n), qkd.NewBits(n)
	for i := 0; i < n; i++ {
		detected.Set(i, 1)
		bobBases.Set(i, uint64(i%2))
	}
	r, err := qkd.Paper(
		qkd.AliceRecord{Bits: raw, Bases: aliceBases},
		qkd.BobRecord{Detected: detected, Bases: bobBases, Results: raw.Clone()})
	fmt.Println(r.AliceSifted.Hex(), r.AliceCheck.Hex(), r.Key.Hex(), err)
	// Output: 4a284b5a 3633 809c <nil>
}

// One block of full BB84 over a channel with 2% depolarizing noise (QBER 1%).
func ExampleRun() {
	cfg := qkd.DefaultConfig()
	cfg.Qubits = 1 << 17
	cfg.Channel.Noise = 0.02
	cfg.Seed = []byte("example") // reproducible; leave nil in production
	st, err := qkd.Run(cfg)
	fmt.Println(err, st.Aborted, st.CorrectedErrors > 0, st.Keys > 0, st.OutputBits <= st.SecureBits)
	// Output: <nil> false true true true
}

// An eavesdropper measuring every qubit raises the QBER to 25%: the block
// aborts and no key is issued.
func ExampleRun_eavesdropper() {
	cfg := qkd.DefaultConfig()
	cfg.Qubits = 1 << 16
	cfg.Channel.Eve = 1
	cfg.Seed = []byte("example")
	st, err := qkd.Run(cfg)
	fmt.Println(errors.Is(err, qkd.ErrQBERTooHigh), st.Keys, st.QBER > 0.24 && st.QBER < 0.26)
	// Output: true 0 true
}

// A Link produces keys with IDs block after block, as the key manager uses it.
func ExampleLink() {
	cfg := qkd.DefaultConfig()
	cfg.Qubits = 1 << 16
	cfg.Seed = []byte("example")
	link, err := qkd.NewLink(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	blk, err := link.Next(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(blk.Keys) > 0, len(blk.Keys[0].Bytes), blk.Keys[0].ID.Version())
	// Output: true 32 VERSION_4
}

// The secret fraction 1 - h(Q) - f h(Q) vanishes near 11% for f = 1.
func ExampleAsymptoticFraction() {
	for _, q := range []float64{0.01, 0.05, 0.11} {
		fmt.Printf("Q=%.2f f=1.0: %.3f  f=1.16: %.3f\n", q, qkd.AsymptoticFraction(q, 1), qkd.AsymptoticFraction(q, 1.16))
	}
	// Output:
	// Q=0.01 f=1.0: 0.838  f=1.16: 0.825
	// Q=0.05 f=1.0: 0.427  f=1.16: 0.381
	// Q=0.11 f=1.0: 0.000  f=1.16: 0.000
}
