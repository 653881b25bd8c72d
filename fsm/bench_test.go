package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkApplyBlock applies blocks of 64 transactions of 100 bytes,
// with and without fsync, and reports transactions per second.
func BenchmarkApplyBlock(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) {
			s, err := OpenStore(b.TempDir()+"/chain.db", 0, StoreOptions{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := New(s, nil)
			payload := make([]byte, 100)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				txs := make([][]byte, 64)
				for j := range txs {
					payload[0], payload[1], payload[2] = byte(i), byte(i>>8), byte(j)
					txs[j] = tx(0, "", string(payload), byte(i>>16))
				}
				r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeAppendBlock(int64(i), txs)}).(*ApplyResult)
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
