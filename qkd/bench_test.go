package qkd

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"testing"
)

// BenchmarkSimulate reports simulated qubits per second on one goroutine.
func BenchmarkSimulate(b *testing.B) {
	const n = 1 << 20
	for _, c := range []struct {
		name string
		ch   Channel
		seed []byte
	}{
		{"ideal/chacha8", Channel{DetectorEfficiency: 1}, []byte("bench")},
		{"noise+loss+dark+eve/chacha8", Channel{Noise: 0.04, DistanceKM: 25, AttenuationDBPerKM: 0.2, DetectorEfficiency: 0.6, DarkCount: 1e-6, Eve: 0.1}, []byte("bench")},
		{"noise/crypto-rand", Channel{Noise: 0.04, DetectorEfficiency: 1}, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := Simulate(c.ch, n, c.seed); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "qubits/s")
		})
	}
}

// BenchmarkSift measures sifting (selection of matching-basis detections).
func BenchmarkSift(b *testing.B) {
	const n = 1 << 20
	a, r, _ := Simulate(Channel{Noise: 0.04, DetectorEfficiency: 1}, n, []byte("sift"))
	for b.Loop() {
		m := siftMask(a, r)
		_ = a.Bits.Select(m)
		_ = r.Results.Select(m)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "qubits/s")
}

// BenchmarkCascade reports the reconciliation efficiency f = leaked bits /
// (n h(Q)) of original Cascade at Q = 1%, 2%, 5% on 10^5-bit keys.
func BenchmarkCascade(b *testing.B) {
	const n = 100000
	for _, q := range []float64{0.01, 0.02, 0.05} {
		b.Run(fmt.Sprintf("Q=%g%%", 100*q), func(b *testing.B) {
			r := mrand.New(mrand.NewPCG(11, uint64(q*1000)))
			var leak, rounds float64
			i := 0
			for b.Loop() {
				b.StopTimer()
				a, k := noisyPair(r, n, q)
				b.StartTimer()
				bob, _, err := reconcile(a, k, q, 4, uint64(i))
				if err != nil {
					b.Fatal(err)
				}
				if !a.Equal(k) {
					b.Fatal("residual errors")
				}
				leak += float64(bob.leak)
				rounds += float64(bob.rounds)
				i++
			}
			b.ReportMetric(leak/(float64(b.N)*n*BinaryEntropy(q)), "f")
			b.ReportMetric(rounds/float64(b.N), "round-trips/op")
		})
	}
}

// BenchmarkBlock runs complete blocks of 10^6 qubits (simulation, sifting,
// estimation, Cascade, verification, privacy amplification, authentication)
// and reports secret key bits per second end to end.
func BenchmarkBlock(b *testing.B) {
	for _, p := range []float64{0.02, 0.04, 0.10} {
		b.Run(fmt.Sprintf("1e6-qubits/QBER=%g%%", 100*p/2), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Qubits = 1000000
			cfg.Channel.Noise = p
			cfg.Seed = []byte("block-bench")
			cfg.AuthReserve = 1 << 16
			l, err := NewLink(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var secure, net float64
			for b.Loop() {
				blk, err := l.Next(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				secure += float64(blk.Stats.SecureBits)
				net += float64(blk.Stats.NetBits)
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(secure/s, "secret-bits/s")
			b.ReportMetric(net/s, "net-bits/s")
			b.ReportMetric(secure/float64(b.N), "secret-bits/block")
		})
	}
}

// BenchmarkToeplitz measures privacy amplification of a 10^6-qubit block.
func BenchmarkToeplitz(b *testing.B) {
	r := mrand.New(mrand.NewPCG(1, 2))
	n, m := 471000, 270000
	x, seed := randBits(r, n), randBits(r, n+m-1)
	for b.Loop() {
		if _, err := ToeplitzHash(seed, x, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "input-bits/s")
}

var sinkF float64

// BenchmarkMAC measures Wegman-Carter tagging of a 64 KiB message.
func BenchmarkMAC(b *testing.B) {
	msg := make([]byte, 64<<10)
	key, pad := make([]byte, 16), make([]byte, 16)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		t := macTag(key, pad, msg)
		sinkF += math.Float64frombits(uint64(t[0]))
	}
}

// BenchmarkNTTForward measures one forward transform of 2^20 points.
func BenchmarkNTTForward(b *testing.B) {
	a := make([]uint32, 1<<20)
	for i := range a {
		a[i] = uint32(i & 1)
	}
	tablesFor(len(a), false)
	for b.Loop() {
		nttForward(a)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(20*(1<<19)), "ns/butterfly")
}
