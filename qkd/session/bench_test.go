package session

import "testing"

// BenchmarkHandshake measures a full handshake (both ends, one goroutine).
func BenchmarkHandshake(b *testing.B) {
	for b.Loop() {
		handshake(b, DefaultConfig())
	}
}

// BenchmarkSealOpen measures one 1 KiB request sealed and opened.
func BenchmarkSealOpen(b *testing.B) {
	cl, gw := handshake(b, DefaultConfig())
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c, err := cl.Seal(msg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gw.Open(c, nil); err != nil {
			b.Fatal(err)
		}
	}
}
