package cluster

import (
	"runtime"
	"sync"
	"time"
)

// cpuSampler measures this process's CPU use as a share of the machine:
// CPU time (user and system) per wall second, divided by the number of
// CPUs, over the window between two samples at least a second apart. A
// node reports it in its Health answer; the autoscaler reads its
// executors'. Nodes embedded in one process share it. Safe for concurrent
// use.
type cpuSampler struct {
	mu   sync.Mutex
	at   time.Time
	cpu  time.Duration
	util float64
}

// processCPU is the process-wide sampler.
var processCPU cpuSampler

// utilization returns the share of the machine's CPUs (0..1) the process
// used over the last window, 0 before the first full window or where the
// platform reports no CPU time.
func (s *cpuSampler) utilization() float64 {
	used, ok := processCPUTime()
	if !ok {
		return 0
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() {
		s.at, s.cpu = now, used
		return 0
	}
	if elapsed := now.Sub(s.at); elapsed >= time.Second {
		s.util = min(1, max(0, float64(used-s.cpu)/float64(elapsed)/float64(runtime.NumCPU())))
		s.at, s.cpu = now, used
	}
	return s.util
}
