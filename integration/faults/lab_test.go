package faults

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCleanStaleRemovesOnlyDeadRuns: namespaces and links named for a
// process that is gone are removed; those of a live run stay.
func TestCleanStaleRemovesOnlyDeadRuns(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	dead := 4194300 // above any pid this machine has handed out
	for ; dead > 0; dead-- {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", dead)); os.IsNotExist(err) {
			break
		}
	}
	deadNS, deadLink := fmt.Sprintf("%s%d-n1", namePrefix, dead), fmt.Sprintf("%s%dbr", namePrefix, dead)
	liveNS := fmt.Sprintf("%s%d-keep", namePrefix, os.Getpid())
	for _, args := range [][]string{{"netns", "add", deadNS}, {"link", "add", deadLink, "type", "bridge"}, {"netns", "add", liveNS}} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = ip("netns", "del", liveNS)
		_ = ip("netns", "del", deadNS)
		_ = ip("link", "del", deadLink)
	})
	CleanStale()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), deadNS) {
		t.Errorf("the dead run's namespace %s is still there", deadNS)
	}
	if !strings.Contains(string(out), liveNS) {
		t.Errorf("the live run's namespace %s was removed", liveNS)
	}
	if linkExists(deadLink) {
		t.Errorf("the dead run's bridge %s is still there", deadLink)
	}
}

// TestLabsBackToBack: a process can make a lab right after closing one
// (the kernel frees a deleted namespace's devices asynchronously, which
// once made the second lab fail with "File exists").
func TestLabsBackToBack(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	for i := 0; i < 3; i++ {
		l, err := NewLab("n1", "n2", "n3")
		if err != nil {
			t.Fatalf("lab %d: %v", i, err)
		}
		// A process still alive in a namespace keeps it, and its
		// devices, after "ip netns del" — as a node exiting does.
		sleeper := l.Hosts[0].Exec("sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
		if err := l.Close(); err != nil {
			t.Fatalf("closing lab %d: %v", i, err)
		}
	}
}
