package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"qledger/cluster"
	"qledger/pki"
)

func runCA(args []string) error {
	return subcommand(args, "ca", map[string]func([]string) error{
		"init":  caInit,
		"issue": caIssue,
	}, []string{"init", "issue"})
}

func caInit(args []string) error {
	fs := flag.NewFlagSet("ca init", flag.ExitOnError)
	dir := fs.String("dir", env("QLEDGER_CA_DIR", ""), "directory for ca.pem and ca-key.pem (env QLEDGER_CA_DIR) [required]")
	name := fs.String("name", "qledger cluster CA", "the root's common name")
	validity := fs.Duration("validity", 10*365*24*time.Hour, "how long the root is valid")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("ca init: --dir is required")
	}
	if _, err := pki.LoadCA(*dir); err == nil {
		return fmt.Errorf("ca init: %s already holds a CA; refusing to replace it", *dir)
	}
	ca, err := pki.NewCA(*name, *validity)
	if err != nil {
		return err
	}
	if err := ca.Save(*dir); err != nil {
		return err
	}
	fmt.Printf("CA %q (ECDSA P-256) in %s: ca.pem (distribute), ca-key.pem (keep secret)\n", *name, *dir)
	return nil
}

func caIssue(args []string) error {
	fs := flag.NewFlagSet("ca issue", flag.ExitOnError)
	dir := fs.String("dir", env("QLEDGER_CA_DIR", ""), "the CA's directory (env QLEDGER_CA_DIR) [required]")
	roleName := fs.String("role", "", "node, submitter, auditor or admin [required]")
	name := fs.String("name", "", "common name: the caller's name (shared-data reader lists use it) or the node's name [required]")
	out := fs.String("out", "", "where to write NAME.pem and NAME-key.pem (default: the CA's directory)")
	nodeID := fs.String("node-id", "", "node certificates: the node's ID, 64 hex digits (default: a new random ID)")
	groups := fs.Int("groups", 0, "node certificates: number of groups n, with --group")
	group := fs.Int("group", -1, "node certificates: draw the ID so that ID mod n is this group (balanced placement is the issuer's choice)")
	hosts := fs.String("hosts", "", "comma-separated DNS names or IPs to add as SANs")
	validity := fs.Duration("validity", 365*24*time.Hour, "how long the certificate is valid")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || *roleName == "" || *name == "" {
		return errors.New("ca issue: --dir, --role and --name are required")
	}
	role, err := pki.ParseRole(*roleName)
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(*dir)
	if err != nil {
		return err
	}
	leaf := pki.Leaf{CommonName: *name, Role: role, Client: true, Hosts: splitList(*hosts), Validity: *validity}
	if role == pki.RoleNode {
		switch {
		case *nodeID != "":
			id, err := cluster.ParseNodeID(*nodeID)
			if err != nil {
				return err
			}
			leaf.NodeID = id.String()
		case *group >= 0:
			if *groups < 1 || *group >= *groups {
				return fmt.Errorf("ca issue: --group %d needs --groups n > %d", *group, *group)
			}
			leaf.NodeID = cluster.NewNodeIDInGroup(*group, *groups).String()
		default:
			leaf.NodeID = cluster.NewNodeID().String()
		}
	} else if *nodeID != "" || *group >= 0 {
		return errors.New("ca issue: --node-id and --group are for node certificates")
	}
	cert, err := ca.Issue(leaf)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = *dir
	}
	if err := cert.Save(*out, *name); err != nil {
		return err
	}
	fmt.Printf("%s certificate %q: %s, %s\n", role, *name, filepath.Join(*out, *name+".pem"), filepath.Join(*out, *name+"-key.pem"))
	if leaf.NodeID != "" {
		fmt.Printf("node ID %s\n", leaf.NodeID)
		if *groups > 0 {
			id, _ := cluster.ParseNodeID(leaf.NodeID)
			fmt.Printf("group %d of %d\n", id.Group(*groups), *groups)
		}
	}
	return nil
}
