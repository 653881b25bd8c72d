package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"qledger/cluster"
	"qledger/pki"
)

func (a *app) caCmd() *cobra.Command {
	return group("ca", "init | issue: the cluster CA and node, submitter, auditor and admin certificates", a.caInitCmd(), a.caIssueCmd())
}

func (a *app) caInitCmd() *cobra.Command {
	var (
		dir, name string
		validity  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "create the cluster CA (ECDSA P-256): ca.pem, ca-key.pem",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return usageErrorf("ca init: --dir is required")
			}
			if _, err := pki.LoadCA(dir); err == nil {
				return fmt.Errorf("ca init: %s already holds a CA; refusing to replace it", dir)
			}
			ca, err := pki.NewCA(name, validity)
			if err != nil {
				return err
			}
			if err := ca.Save(dir); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "CA %q (ECDSA P-256) in %s: ca.pem (distribute), ca-key.pem (keep secret)\n", name, dir)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dir, "dir", "", "directory for ca.pem and ca-key.pem [required]")
	bindEnv(fs, "dir", "QLEDGER_CA_DIR")
	fs.StringVar(&name, "name", "qledger cluster CA", "the root's common name")
	fs.DurationVar(&validity, "validity", 10*365*24*time.Hour, "how long the root is valid")
	return cmd
}

// issueOptions are the flags of ca issue.
type issueOptions struct {
	dir, role, name, out, nodeID, hosts string
	groups, group                       int
	validity                            time.Duration
	ips, dns                            []string
}

func (a *app) caIssueCmd() *cobra.Command {
	var o issueOptions
	cmd := &cobra.Command{
		Use:   "issue --dir DIR --role ROLE --name NAME",
		Short: "issue a node, submitter, auditor or admin certificate",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.dir == "" || o.role == "" || o.name == "" {
				return usageErrorf("ca issue: --dir, --role and --name are required")
			}
			return a.caIssue(o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.dir, "dir", "", "the CA's directory [required]")
	bindEnv(fs, "dir", "QLEDGER_CA_DIR")
	fs.StringVar(&o.role, "role", "", "node, submitter, auditor or admin [required]")
	fs.StringVar(&o.name, "name", "", "common name: the caller's name (shared-data reader lists use it) or the node's name [required]")
	fs.StringVar(&o.out, "out", "", "where to write NAME.pem and NAME-key.pem (default: the CA's directory)")
	fs.StringVar(&o.nodeID, "node-id", "", "node certificates: the node's ID, 64 hex digits (default: a new random ID)")
	fs.IntVar(&o.groups, "groups", 0, "node certificates: number of groups n, with --group")
	fs.IntVar(&o.group, "group", -1, "node certificates: draw the ID so that ID mod n is this group (balanced placement is the issuer's choice)")
	fs.StringSliceVar(&o.ips, "ip", nil, "an IP address the node serves on, put in the certificate's SANs so that any HTTPS client can verify it (repeatable)")
	fs.StringSliceVar(&o.dns, "dns", nil, "a DNS name the node serves as, put in the certificate's SANs (repeatable)")
	fs.StringVar(&o.hosts, "hosts", "", "comma-separated DNS names or IPs to add as SANs (older form of --ip and --dns)")
	fs.DurationVar(&o.validity, "validity", 365*24*time.Hour, "how long the certificate is valid")
	return cmd
}

func (a *app) caIssue(o issueOptions) error {
	role, err := pki.ParseRole(o.role)
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(o.dir)
	if err != nil {
		return err
	}
	hosts, err := sanHosts(o)
	if err != nil {
		return err
	}
	leaf := pki.Leaf{CommonName: o.name, Role: role, Client: true, Hosts: hosts, Validity: o.validity}
	if leaf.NodeID, err = issuedNodeID(role, o); err != nil {
		return err
	}
	cert, err := ca.Issue(leaf)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = o.dir
	}
	if err := cert.Save(o.out, o.name); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s certificate %q: %s, %s\n", role, o.name, filepath.Join(o.out, o.name+".pem"), filepath.Join(o.out, o.name+"-key.pem"))
	if len(hosts) > 0 {
		fmt.Fprintf(a.stdout, "valid for %s\n", strings.Join(hosts, ", "))
	}
	if leaf.NodeID != "" {
		fmt.Fprintf(a.stdout, "node ID %s\n", leaf.NodeID)
		if o.groups > 0 {
			id, _ := cluster.ParseNodeID(leaf.NodeID)
			fmt.Fprintf(a.stdout, "group %d of %d\n", id.Group(o.groups), o.groups)
		}
	}
	return nil
}

// issuedNodeID is the node ID a certificate for role carries: given,
// drawn into a group, or random; none for other roles.
func issuedNodeID(role pki.Role, o issueOptions) (string, error) {
	if role != pki.RoleNode {
		if o.nodeID != "" || o.group >= 0 {
			return "", usageErrorf("ca issue: --node-id and --group are for node certificates")
		}
		return "", nil
	}
	switch {
	case o.nodeID != "":
		id, err := cluster.ParseNodeID(o.nodeID)
		if err != nil {
			return "", err
		}
		return id.String(), nil
	case o.group >= 0:
		if o.groups < 1 || o.group >= o.groups {
			return "", usageErrorf("ca issue: --group %d needs --groups n > %d", o.group, o.group)
		}
		return cluster.NewNodeIDInGroup(o.group, o.groups).String(), nil
	}
	return cluster.NewNodeID().String(), nil
}

// sanHosts are the SANs --ip, --dns and --hosts ask for; an --ip that is
// not an IP address, or a --dns that is one, is a usage error.
func sanHosts(o issueOptions) ([]string, error) {
	hosts := splitList(o.hosts)
	for _, ip := range o.ips {
		if net.ParseIP(ip) == nil {
			return nil, usageErrorf("ca issue: --ip %q is not an IP address", ip)
		}
		hosts = append(hosts, ip)
	}
	for _, name := range o.dns {
		if name == "" || net.ParseIP(name) != nil || strings.ContainsAny(name, " /:") {
			return nil, usageErrorf("ca issue: --dns %q is not a DNS name (an address goes in --ip)", name)
		}
		hosts = append(hosts, name)
	}
	return hosts, nil
}
