//go:build wasip1

package main

// hostTime is provided by the host as env.host_time.
//
//go:wasmimport env host_time
func hostTime() int64
