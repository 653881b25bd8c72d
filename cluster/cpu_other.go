//go:build !unix

package cluster

import "time"

// processCPUTime reports no CPU time where getrusage does not exist.
func processCPUTime() (time.Duration, bool) { return 0, false }
