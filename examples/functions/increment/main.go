// Command increment is the seed paper's example contract (section 7.3): it
// reads {"value":N} on stdin and writes {"value":N+1} on stdout.
//
// Build for the ledger with GOOS=wasip1 GOARCH=wasm. Invalid input or an
// overflow is reported on stderr with exit status 1; nothing is written to
// stdout then.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

type message struct {
	Value *int64 `json:"value"`
}

func main() {
	out, err := run(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "increment:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func run(in io.Reader) ([]byte, error) {
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var m message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bad input: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("bad input: trailing data")
	}
	if m.Value == nil {
		return nil, fmt.Errorf(`bad input: missing "value"`)
	}
	if *m.Value == math.MaxInt64 {
		return nil, fmt.Errorf("value overflows")
	}
	v := *m.Value + 1
	return json.Marshal(message{Value: &v})
}
