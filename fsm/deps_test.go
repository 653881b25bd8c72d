package fsm

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoRuntimeDependency: the state machine reads deployments through
// package function and must not link the WebAssembly runtime (execute,
// wazero). Changing fsm/functions.go importing execute again fails it.
func TestNoRuntimeDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "qledger/execute" || strings.Contains(dep, "wazero") {
			t.Errorf("fsm depends on %s", dep)
		}
	}
}
