package cluster

import (
	"context"
	"testing"
	"time"
)

func suffrageOf(l *Local, g int, id string) string {
	ld, ok := l.Leader(g)
	if !ok {
		return ""
	}
	for _, m := range ld.localStatus().Members {
		if m.ID == id {
			return m.Suffrage
		}
	}
	return ""
}

// BenchmarkJoin measures, with loopback timing (1 s stabilization), the
// time from starting a voter-role node to its being a non-voter of its
// group, and to its promotion to voter.
func BenchmarkJoin(b *testing.B) {
	var toNonVoter, toVoter time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		l, err := StartLocal(ctx, LocalConfig{Groups: 1, Replicas: 1, DataDir: b.TempDir()})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n, err := l.AddNode(RoleVoter, 0)
		if err != nil {
			b.Fatal(err)
		}
		id := n.info.ID
		for suffrageOf(l, 0, id) != "nonvoter" && suffrageOf(l, 0, id) != "voter" {
			time.Sleep(5 * time.Millisecond)
		}
		toNonVoter += time.Since(start)
		for suffrageOf(l, 0, id) != "voter" {
			time.Sleep(5 * time.Millisecond)
		}
		toVoter += time.Since(start)
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(toNonVoter.Milliseconds())/float64(b.N), "ms-to-nonvoter")
	b.ReportMetric(float64(toVoter.Milliseconds())/float64(b.N), "ms-to-voter")
}

// BenchmarkFailover measures, with loopback timing (2 s grace), the time
// from a voter's abrupt stop to a standby's promotion and to the failed
// voter's removal.
func BenchmarkFailover(b *testing.B) {
	var toPromotion, toRemoval time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		l, err := StartLocal(ctx, LocalConfig{Groups: 1, Replicas: 3, DataDir: b.TempDir()})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		standby, err := l.AddNode(RoleVoter, 0)
		if err != nil {
			b.Fatal(err)
		}
		for {
			ld, ok := l.Leader(0)
			if ok {
				if h, ok := ld.rec.snapshot()[standby.info.ID]; ok && h.Stable && suffrageOf(l, 0, standby.info.ID) == "nonvoter" {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		var victim *Node
		for _, n := range l.Nodes[:3] {
			if !n.IsLeader() {
				victim = n
				break
			}
		}
		b.StartTimer()
		start := time.Now()
		victim.Close()
		for suffrageOf(l, 0, standby.info.ID) != "voter" {
			time.Sleep(5 * time.Millisecond)
		}
		toPromotion += time.Since(start)
		for suffrageOf(l, 0, victim.info.ID) != "" {
			time.Sleep(5 * time.Millisecond)
		}
		toRemoval += time.Since(start)
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(toPromotion.Milliseconds())/float64(b.N), "ms-to-standby-promotion")
	b.ReportMetric(float64(toRemoval.Milliseconds())/float64(b.N), "ms-to-removal")
}
