package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/pki"
	"qledger/server"
)

// caLab is an embedded cluster on a fresh CA, for the commands that need
// a role: its directory, the CA and its files, and a context that lasts
// the test (at most two minutes).
type caLab struct {
	t   *testing.T
	dir string // the test's directory; the CA's files are in dir/tls
	ca  *pki.CA
	lc  *server.Local
	ctx context.Context
}

// newCALab starts c (its Dir defaults to the test's directory) on a CA
// made for the test; the cluster stops when the test ends.
func newCALab(t *testing.T, c server.LocalConfig) *caLab {
	t.Helper()
	l := &caLab{t: t, dir: t.TempDir()}
	var err error
	if l.ca, err = server.DevCA(filepath.Join(l.dir, "tls")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	l.ctx = ctx
	if c.Dir == "" {
		c.Dir = l.dir
	}
	c.CA, c.Logger = l.ca, hclog.NewNullLogger()
	if l.lc, err = server.StartLocal(ctx, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.lc.Close() })
	return l
}

// flags are the client flags that reach addr as role.
func (l *caLab) flags(role, addr string) []string {
	tls := filepath.Join(l.dir, "tls")
	return []string{"--addr", addr, "--ca", filepath.Join(tls, "ca.pem"),
		"--cert", filepath.Join(tls, role+".pem"), "--cert-key", filepath.Join(tls, role+"-key.pem")}
}

// as runs the CLI with args as role against the first node.
func (l *caLab) as(role string, args ...string) ran {
	l.t.Helper()
	return cli(l.t, append(args, l.flags(role, l.lc.Addrs[0])...)...)
}
