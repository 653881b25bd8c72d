// Command tinygen writes the hand-assembled example modules (package
// examples/functions/tiny) as NAME.wasm files, and with -go also builds the
// Go examples.
//
//	go run ./examples/functions/tinygen -o examples/functions        # tiny only
//	go run ./examples/functions/tinygen -go -o examples/functions    # all
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"qledger/examples/functions"
)

func main() {
	dir := flag.String("o", ".", "output directory")
	withGo := flag.Bool("go", false, "also build the Go examples (GOOS=wasip1 GOARCH=wasm)")
	flag.Parse()
	build := functions.BuildTiny
	if *withGo {
		build = functions.Build
	}
	paths, err := build(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tinygen:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(paths))
	for n := range paths {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(paths[n])
	}
}
