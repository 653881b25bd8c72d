//go:build !wasip1

package main

import "time"

// hostTime reads the real clock when the program runs natively.
func hostTime() int64 { return time.Now().UnixNano() }
