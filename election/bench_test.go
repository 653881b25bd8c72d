package election

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchReveals(n int) []Reveal {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	out := make([]Reveal, n)
	for i := range out {
		out[i].NodeID = fmt.Sprintf("%064x", r.Uint64()) // node IDs are 256-bit hex
		for j := range out[i].Nonce {
			out[i].Nonce[j] = byte(r.Uint32())
		}
	}
	return out
}

// BenchmarkElect: the leader's whole election for one request, with n
// candidates: key derivation, n nonce hashes, stakes, ranking, record.
func BenchmarkElect(b *testing.B) {
	for _, n := range []int{3, 16} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			reveals := benchReveals(n)
			for b.Loop() {
				key, err := DeriveKey(testSessionKey, []byte("request-0001"))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Elect(key, "key-1", []byte("request-0001"), reveals); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify: an auditor's check of a record with n candidates.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{3, 16} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			key, _ := DeriveKey(testSessionKey, []byte("request-0001"))
			rec, err := Elect(key, "key-1", []byte("request-0001"), benchReveals(n))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := VerifyWithSessionKey(rec, testSessionKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
