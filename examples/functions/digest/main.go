// Command digest is a hashing function: it reads all of stdin and writes its
// length and its SHA-256, SHA-512 and CRC-32C (Castagnoli) digests as JSON:
//
//	{"bytes":3,"crc32c":"364b3fb7","sha256":"ba78…","sha512":"ddaf…"}
package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

type digests struct {
	Bytes  int64  `json:"bytes"`
	CRC32C string `json:"crc32c"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
}

func main() {
	s256, s512 := sha256.New(), sha512.New()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(io.MultiWriter(s256, s512, crc), os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "digest:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(digests{
		Bytes:  n,
		CRC32C: hex.EncodeToString(crc.Sum(nil)),
		SHA256: hex.EncodeToString(s256.Sum(nil)),
		SHA512: hex.EncodeToString(s512.Sum(nil)),
	})
	os.Stdout.Write(out)
}
