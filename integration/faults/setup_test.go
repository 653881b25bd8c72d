package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"qledger/api/client"
	"qledger/examples/functions/tiny"
)

// dataSize is the tmpfs every test node's data directory lives on, so the
// disk-full nemesis can fill it: far more than a run writes, and a tmpfs
// takes memory only for what is written.
const dataSize = 1 << 30

// startHealthyCluster builds qledger, starts three voters (n1, n2, n3) in
// a lab of their own network namespaces, with a standby (s1) and two
// executors (x1, x2) ready for the membership nemeses, and waits until the
// cluster is healthy. Cleanup stops the nodes, prints their log tails if the test
// failed, and removes the lab.
func startHealthyCluster(t *testing.T) *Cluster {
	t.Helper()
	return startHealthyClusterOf(t, 3, 1)
}

// startHealthyClusterOf is startHealthyCluster with groups groups of
// voters voters each (3 or 5), every group keeping that many
// (--target-voters) and having spares of its own: group 0 has n1 ... n3
// (or n5), s1, x1 and x2; group 1 the next numbers (n4 ... n6, s2, x3,
// x4 with three voters).
func startHealthyClusterOf(t *testing.T, voters, groups int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	bin, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for g := range groups {
		for i := range voters {
			names = append(names, fmt.Sprintf("n%d", g*voters+i+1))
		}
		names = append(names, fmt.Sprintf("s%d", g+1), fmt.Sprintf("x%d", 2*g+1), fmt.Sprintf("x%d", 2*g+2))
	}
	lab, err := NewLab(names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("remove the lab: %v", err)
		}
	})
	c, err := StartClusterWith(lab, bin, dir, Options{DataSize: dataSize, Standbys: 1, Executors: 2, TargetVoters: voters, Groups: groups})
	if c != nil {
		t.Cleanup(c.Close)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close() // before the log tails: a node may still write
		if t.Failed() {
			t.Logf("node logs:\n%s", c.LogTail(40))
			if dir, err := c.KeepLogs(); err == nil {
				t.Logf("whole node logs kept in %s", dir)
			}
		}
	})
	c.Logf = t.Logf
	if err := c.WaitHealthy(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

// echoFunction is the function the workload's invokers call: tiny's echo
// (output = input), deployed by deployEcho.
const echoFunction = "echo"

// deployEcho deploys echoFunction on c.
func deployEcho(t *testing.T, c *Cluster) {
	t.Helper()
	code, ok := tiny.Module("echo")
	if !ok {
		t.Fatal("tiny has no echo module")
	}
	if err := c.Deploy(context.Background(), client.DeployRequest{Name: echoFunction, Version: "1", Code: code}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// newWorkload is the clients every schedule runs: three writers, two
// readers and one invoker of echoFunction, with keys and inputs starting
// with prefix.
func newWorkload(c *Cluster, prefix string) *Workload {
	return &Workload{Writers: 3, Readers: 2, Invokers: 1, Function: echoFunction, Caller: c.Caller,
		OpTimeout: 5 * time.Second, Retries: 2, Prefix: prefix}
}
