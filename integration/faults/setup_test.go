package faults

import (
	"context"
	"testing"
	"time"
)

// dataSize is the tmpfs every test node's data directory lives on, so the
// disk-full nemesis can fill it: far more than a run writes, and a tmpfs
// takes memory only for what is written.
const dataSize = 1 << 30

// startHealthyCluster builds qledger, starts three nodes (n1, n2, n3) in a
// lab of their own network namespaces and waits until the cluster is
// healthy. Cleanup stops the nodes, prints their log tails if the test
// failed, and removes the lab.
func startHealthyCluster(t *testing.T) *Cluster {
	t.Helper()
	dir := t.TempDir()
	bin, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	lab, err := NewLab("n1", "n2", "n3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("remove the lab: %v", err)
		}
	})
	c, err := StartClusterWith(lab, bin, dir, Options{DataSize: dataSize})
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
		}
	})
	if err := c.WaitHealthy(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}
