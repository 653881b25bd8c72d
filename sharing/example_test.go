package sharing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"

	"qledger/sharing"
)

// Split into five shares, any three of which recover the data (the
// default, confidential dispersal mode).
func Example() {
	data := []byte("quarterly results: confidential")
	shares, _, err := sharing.Split(data, sharing.DefaultOptions(3, 5))
	if err != nil {
		panic(err)
	}
	got, _, err := sharing.Recover([]*sharing.Share{shares[4], shares[0], shares[2]})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(got))

	_, _, err = sharing.Recover(shares[:2])
	fmt.Println(err)
	fmt.Println(errors.Is(err, sharing.ErrTooFewShares))
	// Output:
	// quarterly results: confidential
	// sharing: too few shares: 2 given (indices [0 1]), 3 needed
	// true
}

// Split a stream into share streams and recover from three of them. Data
// larger than memory works the same way with files.
func ExampleSplitStream() {
	data := bytes.Repeat([]byte("ledger "), 100_000) // 700,000 bytes
	files := make([]bytes.Buffer, 5)
	ws := make([]io.Writer, 5)
	for i := range files {
		ws[i] = &files[i]
	}
	sum, err := sharing.SplitStream(bytes.NewReader(data), ws, sharing.DefaultOptions(3, 5))
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	rsum, err := sharing.RecoverStream(&out, []io.Reader{&files[1], &files[3], &files[4]})
	if err != nil {
		panic(err)
	}
	fmt.Println(bytes.Equal(out.Bytes(), data), rsum.Length, bytes.Equal(sum.Digest, rsum.Digest))
	fmt.Printf("share 0 stores %.1f%% of the data\n", 100*float64(files[0].Len())/float64(len(data)))
	// Output:
	// true 700000 true
	// share 0 stores 33.4% of the data
}

// The paper mode on a 1,000-digit number with (t, n) = (15, 20): every
// share is a 224-bit residue modulo a public prime. It is small, and it is
// not confidential (see the package documentation).
func ExampleSplit_paper() {
	n, _ := new(big.Int).SetString("1"+string(bytes.Repeat([]byte("0123456789"), 100))[:1000], 10)
	data := n.Bytes()
	shares, sum, err := sharing.Split(data, sharing.Options{Scheme: sharing.Paper, Threshold: 15, Shares: 20})
	if err != nil {
		panic(err)
	}
	m, _ := shares[0].Modulus()
	fmt.Printf("%d bytes of data, %d-bit modulus, %d-byte residue per share (%.1f%%)\n",
		len(data), m.BitLen(), len(shares[0].Payload), 100*float64(len(shares[0].Payload))/float64(len(data)))
	got, rsum, err := sharing.Recover(shares[5:])
	fmt.Println(err, new(big.Int).SetBytes(got).Cmp(n) == 0, bytes.Equal(rsum.Digest, sum.Digest))
	// Output:
	// 416 bytes of data, 224-bit modulus, 28-byte residue per share (6.7%)
	// <nil> true true
}

// Asmuth-Bloom shares a small secret; every share is a little larger than
// the secret itself.
func ExampleSplit_asmuthBloom() {
	secret := []byte{0, 0, 1, 2, 3} // leading zero bytes survive
	shares, _, err := sharing.Split(secret, sharing.Options{Scheme: sharing.AsmuthBloom, Threshold: 2, Shares: 3})
	if err != nil {
		panic(err)
	}
	got, _, err := sharing.Recover(shares[1:])
	fmt.Println(got, err, len(shares[0].Payload))
	// Output:
	// [0 0 1 2 3] <nil> 23
}

// Verify detects a changed share and names it.
func ExampleShare_Verify() {
	shares, _, _ := sharing.Split([]byte("some data"), sharing.DefaultOptions(2, 3))
	shares[1].Payload[0] ^= 1
	err := shares[1].Verify()
	fmt.Println(err)
	var se *sharing.ShareError
	fmt.Println(errors.As(err, &se), se.Index, errors.Is(err, sharing.ErrTampered))
	// Output:
	// sharing: share 1: sharing: share hash mismatch
	// true 1 true
}
