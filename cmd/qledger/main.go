// Command qledger runs qledger nodes and talks to them.
//
//	qledger node      run one node
//	qledger dev       run an embedded local cluster
//	qledger demo      run the main scenario end to end and exit
//	qledger tx        submit and fetch transactions
//	qledger chain     inspect and verify chains
//	qledger cluster   show and change membership
//	qledger qkd       simulate BB84 key distribution
//	qledger fn        deploy and invoke functions
//	qledger data      share data confidentially across groups
//	qledger ca        the cluster CA and its certificates
//	qledger audit     watch heads with a trusted-state cache
//	qledger explorer  serve the chain explorer (pages and a read-only proxy)
//	qledger snapshot  save, verify and restore backups of a group
//	qledger bench     measure commit throughput and latency
//
// The command tree is built with cobra (root.go); this package only parses
// flags and calls the packages that do the work. Exit status: 0 success, 1
// the command failed, 2 the command line is wrong.
package main

import "os"

var version = "0.1.0-dev"

func main() {
	os.Exit(runCLI(version, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
