package faults

import (
	"context"
	"testing"
	"time"
)

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
	c, err := StartCluster(lab, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("node logs:\n%s", c.LogTail(40))
		}
	})
	if err := c.WaitHealthy(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}
