package sharing

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, sc := range []Scheme{Paper, AsmuthBloom, Dispersal} {
		for _, size := range []int{1, 2, 31, 100, 500, 5000, 100000} {
			if sc == AsmuthBloom && size > MaxSecretSize {
				continue
			}
			for _, tn := range [][2]int{{1, 1}, {2, 3}, {3, 5}, {15, 20}} {
				data := make([]byte, size)
				rand.Read(data)
				data[0] = 0
				opts := Options{Scheme: sc, Threshold: tn[0], Shares: tn[1], SegmentSize: 1000}
				shares, sum, err := Split(data, opts)
				if err != nil {
					t.Fatalf("%v %d %v: %v", sc, size, tn, err)
				}
				got, sum2, err := Recover(shares[len(shares)-tn[0]:])
				if err != nil {
					t.Fatalf("recover %v %d %v: %v", sc, size, tn, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("mismatch %v %d %v", sc, size, tn)
				}
				if !bytes.Equal(sum.Digest, sum2.Digest) {
					t.Fatal("digest")
				}
				// stream
				bufs := make([]bytes.Buffer, tn[1])
				for i, s := range shares {
					b, err := s.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					bufs[i].Write(b)
					d, err := DecodeShare(b)
					if err != nil {
						t.Fatal(err)
					}
					if err := d.Verify(); err != nil {
						t.Fatal(err)
					}
				}
				var out bytes.Buffer
				rs := []io.Reader{}
				for i := tn[1] - tn[0]; i < tn[1]; i++ {
					rs = append(rs, &bufs[i])
				}
				if _, err := RecoverStream(&out, rs); err != nil {
					t.Fatalf("stream %v %d %v: %v", sc, size, tn, err)
				}
				if !bytes.Equal(out.Bytes(), data) {
					t.Fatal("stream mismatch")
				}
			}
		}
	}
}
