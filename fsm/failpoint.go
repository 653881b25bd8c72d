package fsm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Failpoints let the crash-safety tests stop a snapshot, a restore or an
// install at each of its steps. QLEDGER_FAILPOINTS lists NAME=ACTION
// pairs separated by commas, read once at start; ACTION is "kill" (the
// process sends itself SIGKILL, as a crash would stop it) or "error" (the
// step fails). Unset, every failpoint is a no-op costing one map lookup.
//
// The names: snapshot-after-sync, snapshot-before-close (reference
// snapshots), restore-after-copy, restore-before-swap,
// restore-after-swap (Restore), install-send-end (the sender's stream of
// the live store, before its last byte is acknowledged),
// migrate-after-copy, migrate-before-rename, migrate-after-rename
// (MigrateFile of a format-1 store), upgrade-before-stamp (the in-place
// conversion of a format-2 store, before its one commit).
const failpointEnv = "QLEDGER_FAILPOINTS"

// errFailpoint is what an "error" failpoint returns.
var errFailpoint = errors.New("fsm: failpoint")

var failpoints struct {
	once sync.Once
	mu   sync.Mutex
	acts map[string]string
}

func loadFailpoints() {
	failpoints.acts = map[string]string{}
	for _, kv := range strings.Split(os.Getenv(failpointEnv), ",") {
		if name, act, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			failpoints.acts[name] = act
		}
	}
}

// setFailpoint sets (act "") or clears one failpoint, for in-process
// tests.
func setFailpoint(name, act string) {
	failpoints.once.Do(loadFailpoints)
	failpoints.mu.Lock()
	defer failpoints.mu.Unlock()
	if act == "" {
		delete(failpoints.acts, name)
		return
	}
	failpoints.acts[name] = act
}

// failpoint runs the action set for name, if any.
func failpoint(name string) error {
	failpoints.once.Do(loadFailpoints)
	failpoints.mu.Lock()
	act := failpoints.acts[name]
	failpoints.mu.Unlock()
	switch act {
	case "":
		return nil
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal ends the process
	default:
		return fmt.Errorf("%w: %s", errFailpoint, name)
	}
}
