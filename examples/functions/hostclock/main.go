// Command hostclock is deliberately non-deterministic: it asks the host for
// the time through a custom import, env.host_time, and prints it. Two
// executions of the same request on a runtime that offered such an import
// would disagree. The ledger's runtime offers no import outside
// wasi_snapshot_preview1, so deploying this function fails with
// execute.ErrUnsupportedImport naming env.host_time.
//
// Built natively (not GOOS=wasip1) it reads the host clock directly, to show
// what the function would do.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintf(os.Stdout, "{\"host_time\":%d}", hostTime())
}
