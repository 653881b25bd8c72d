// Command gomemhog allocates (and touches) 1 MiB blocks until the Go runtime
// runs out of memory. Under a memory page limit the runtime's memory.grow is
// refused and the execution ends with the memory-limit outcome; without one
// it would take the whole 4 GiB address space of wasm32.
package main

import (
	"fmt"
	"os"
)

func main() {
	var keep [][]byte
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		keep = append(keep, b)
		if i%64 == 0 {
			fmt.Fprintf(os.Stderr, "gomemhog: %d MiB\n", len(keep))
		}
	}
}
