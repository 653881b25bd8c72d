// Command clockrand reports what a function can observe of its host: the
// wall clock, the monotonic clock across a one-hour sleep, random bytes from
// crypto/rand, a number from math/rand/v2's runtime-seeded generator, its
// arguments, its environment and whether it can list "/".
//
// On the ledger every one of these is derived from the request ID (or is
// empty), so executing the same request twice prints the same JSON, and two
// requests print different clocks and random values. Run natively, it prints
// the host's real values instead.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	mrand "math/rand/v2"
	"os"
	"time"
)

type report struct {
	WallUnixNano int64    `json:"wall_unix_nano"`
	SleptNanos   int64    `json:"slept_nanos"`
	Random       string   `json:"random"`
	MathRand     uint64   `json:"math_rand"`
	Args         []string `json:"args"`
	Env          []string `json:"env"`
	ListRoot     string   `json:"list_root"`
}

func main() {
	r := report{WallUnixNano: time.Now().UnixNano(), Args: os.Args, Env: os.Environ()}
	start := time.Now()
	time.Sleep(time.Hour)
	r.SleptNanos = int64(time.Since(start))
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		r.Random = "error: " + err.Error()
	} else {
		r.Random = hex.EncodeToString(b[:])
	}
	r.MathRand = mrand.Uint64()
	if _, err := os.ReadDir("/"); err != nil {
		r.ListRoot = "error: " + err.Error()
	} else {
		r.ListRoot = "ok"
	}
	out, _ := json.Marshal(r)
	os.Stdout.Write(out)
}
