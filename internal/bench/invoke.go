package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"time"

	"qledger/chain"
	"qledger/cluster"
	"qledger/examples/functions"
	"qledger/examples/functions/tiny"
	"qledger/execute"
	"qledger/function"
	"qledger/server"
)

// InvokeConfig is one run of Invoke.
type InvokeConfig struct {
	Clients  int           // concurrent clients
	Duration time.Duration // measured time per run
	Go       bool          // also measure the Go increment (needs the Go toolchain to build it)
	Markdown bool          // print a Markdown table
	// Groups are the group counts measured (default 1 and 3).
	Groups []int
	// CPUProfile, if set, is a file for a CPU profile of the first
	// verified-invocation run (the first module, the first group count).
	CPUProfile string
}

// Invoke measures verified invocations end to end (gateway to
// committed execution record) beside two baselines from the same run: the
// bare ledger write path, and the WebAssembly call alone.
func Invoke(cfg InvokeConfig, out, log io.Writer) error {
	if len(cfg.Groups) == 0 {
		cfg.Groups = []int{1, 3}
	}
	dir, err := os.MkdirTemp("", "qledger-bench-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mods, err := modules(dir, cfg.Go)
	if err != nil {
		return err
	}
	b := invokeBench{cfg: cfg, dir: dir, run: benchRun{log: log, dur: cfg.Duration, warm: 500 * time.Millisecond}, base: cluster.DefaultConfig(), profiled: new(bool)}
	b.base.LoopbackTiming()
	tab := newTable(out, cfg.Markdown, "system", "payload", "clients", "ops/s", "p50 ms", "p99 ms", "vs baseline ops/s", "p50 vs baseline")
	fmt.Fprintf(out, "qledger bench invoke: 3 replicas per group, %d clients, %s per run\n", cfg.Clients, cfg.Duration)
	for _, name := range []string{"tiny", "go"} {
		code, ok := mods[name]
		if !ok {
			continue
		}
		d := function.Deployment{Spec: function.DefaultSpec("increment", "1", code), Code: code}
		wasm, err := b.wasmAlone(d)
		if err != nil {
			return err
		}
		for _, groups := range cfg.Groups {
			ledger, inv, err := b.onCluster(fmt.Sprintf("%s/%s-%d", dir, name, groups), groups, d)
			if err != nil {
				return err
			}
			label := fmt.Sprintf("%s increment, %d group(s)", name, groups)
			tab.row("wasm call alone ("+name+")", 13, cfg.Clients, wasm, wasm)
			tab.row("ledger submit, "+fmt.Sprint(groups)+" group(s)", 13, cfg.Clients, ledger, ledger)
			tab.row("verified invoke: "+label+" vs submit", 13, cfg.Clients, inv, ledger)
		}
	}
	tab.print()
	return nil
}

// modules are the increment modules measured: the hand-assembled one, and
// with withGo the Go one built into dir.
func modules(dir string, withGo bool) (map[string][]byte, error) {
	mods := map[string][]byte{}
	mods["tiny"], _ = tiny.Module("tinyinc")
	if !withGo {
		return mods, nil
	}
	built, err := functions.BuildGo(dir)
	if err != nil {
		return nil, err
	}
	if mods["go"], err = os.ReadFile(built["increment"]); err != nil {
		return nil, err
	}
	return mods, nil
}

type invokeBench struct {
	cfg  InvokeConfig
	dir  string
	run  benchRun
	base cluster.Config
	// profiled is set once the CPU profile has been started.
	profiled *bool
}

// wasmAlone is baseline 1: the WebAssembly call alone, in one runtime.
func (b invokeBench) wasmAlone(d function.Deployment) (result, error) {
	rt, err := execute.New(execute.DefaultConfig())
	if err != nil {
		return result{}, err
	}
	defer rt.Close()
	if _, err := rt.Deploy(context.Background(), d); err != nil {
		return result{}, err
	}
	return b.run.drive(b.cfg.Clients, func(c, i int) error {
		var id [32]byte
		rand.Read(id[:])
		_, err := rt.Invoke(context.Background(), d.Spec, id, []byte(`{"value":100}`))
		return err
	}), nil
}

// onCluster measures baseline 2, the bare ledger write path, and verified
// invocations on one cluster of groups × 3 nodes, with the same clients.
func (b invokeBench) onCluster(dir string, groups int, d function.Deployment) (ledger, inv result, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: dir, Groups: groups, Replicas: 3, Base: &b.base, API: unlimited})
	cancel()
	if err != nil {
		return result{}, result{}, err
	}
	defer lc.Close()
	gw := lc.Nodes[0]
	if err := deploy(lc, gw, groups, d); err != nil {
		return result{}, result{}, err
	}
	ledger = b.run.drive(b.cfg.Clients, func(c, i int) error {
		_, err := gw.Submit(context.Background(), chain.Tx{Kind: chain.TxData, Group: uint32(c % groups), Payload: []byte(`{"value":100}`)})
		return err
	})
	if b.cfg.CPUProfile != "" && !*b.profiled {
		*b.profiled = true
		stop, err := startProfile(b.cfg.CPUProfile)
		if err != nil {
			return result{}, result{}, err
		}
		defer stop()
	}
	hists := []string{"qledger_invocation_seconds", "qledger_block_transactions"}
	h0 := snapshotHists(hists...)
	inv = b.run.drive(b.cfg.Clients, invokeOp(gw, groups))
	role := "a follower"
	if gw.IsLeader() {
		role = "the leader"
	}
	fmt.Fprintf(b.run.log, "verified invoke, %d group(s): %d invocations, %d errors, process CPU %v per invocation (submit: %v per write); gateway %s of group %d; mean on the leader, warm-up included: %s\n",
		groups, inv.ops, inv.errs, inv.cpuPerOp().Round(time.Microsecond), ledger.cpuPerOp().Round(time.Microsecond), role, gw.Group(), invokeBreakdown(h0, snapshotHists(hists...)))
	return ledger, inv, nil
}
