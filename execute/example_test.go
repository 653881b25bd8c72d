package execute_test

import (
	"context"
	"fmt"

	"qledger/examples/functions/tiny"
	"qledger/execute"
	"qledger/function"
)

// Deploy a hand-assembled increment function and run the same request twice:
// the results hash the same, as a verifier's re-execution must.
func Example() {
	ctx := context.Background()
	rt, err := execute.New(execute.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer rt.Close()

	code, _ := tiny.Module("tinyinc")
	spec := function.DefaultSpec("tinyinc", "1.0.0", code)
	if _, err := rt.Deploy(ctx, function.Deployment{Spec: spec, Code: code}); err != nil {
		panic(err)
	}
	requestID := [32]byte{42}
	a, _ := rt.Invoke(ctx, spec, requestID, []byte(`{"value":100}`))
	b, _ := rt.Invoke(ctx, spec, requestID, []byte(`{"value":100}`))
	fmt.Println(a.Outcome, string(a.Stdout))
	fmt.Println("same hash:", a.Hash == b.Hash)

	// A limit hit is an error outcome, never a success.
	spec.MaxOutputBytes = 4
	c, _ := rt.Invoke(ctx, spec, requestID, []byte(`{"value":100}`))
	fmt.Println(c.Outcome, c.Err())
	// Output:
	// ok {"value":101}
	// same hash: true
	// output_limit execute: output limit exceeded: stdout over 4 bytes
}
