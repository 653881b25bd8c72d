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
//	qledger bench     measure commit throughput and latency
package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
)

var version = "0.1.0-dev"

type command struct {
	name, summary string
	run           func(args []string) error
}

func commands() []command {
	return []command{
		{"node", "run one node", runNode},
		{"dev", "run an embedded cluster of groups × replicas on loopback", runDev},
		{"demo", "start a throwaway cluster, run the main scenario, print a report", runDemo},
		{"tx", "submit | get transactions", runTx},
		{"chain", "head | show | verify chains", runChain},
		{"cluster", "status | join | remove", runCluster},
		{"qkd", "run | curve: simulate BB84 key distribution", runQKD},
		{"fn", "deploy | invoke | ls: serverless functions run as verified contracts", runFn},
		{"data", "put | get | ls | export-shares | recover: confidential data across groups", runData},
		{"bench", "measure commit throughput and latency against a bare-raft baseline", runBench},
		{"audit", "watch: keep the last verified head of every group and check each new one", runAudit},
		{"ca", "init | issue: the cluster CA and node, submitter, auditor and admin certificates", runCA},
		{"keygen", "print a new random gossip encryption key (base64)", runKeygen},
		{"version", "print the version", func([]string) error { fmt.Println("qledger", version); return nil }},
	}
}

func runKeygen([]string) error {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	fmt.Println(base64.StdEncoding.EncodeToString(k))
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: qledger <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'qledger <command> -h' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	for _, c := range commands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "qledger:", err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "qledger: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}
