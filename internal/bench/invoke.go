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
	"qledger/election"
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
}

// Invoke measures verified invocations end to end (gateway to
// committed execution record) beside two baselines from the same run: the
// bare ledger write path, and the WebAssembly call alone.
func Invoke(cfg InvokeConfig, out, log io.Writer) error {
	dir, err := os.MkdirTemp("", "qledger-bench-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mods := map[string][]byte{}
	mods["tiny"], _ = tiny.Module("tinyinc")
	if cfg.Go {
		built, err := functions.BuildGo(dir)
		if err != nil {
			return err
		}
		if mods["go"], err = os.ReadFile(built["increment"]); err != nil {
			return err
		}
	}
	run := benchRun{log: log, dur: cfg.Duration, warm: 500 * time.Millisecond}
	base := cluster.DefaultConfig()
	base.LoopbackTiming()
	tab := newTable(out, cfg.Markdown, "system", "payload", "clients", "ops/s", "p50 ms", "p99 ms", "vs baseline ops/s", "p50 vs baseline")
	fmt.Fprintf(out, "qledger bench invoke: 3 replicas per group, %d clients, %s per run\n", cfg.Clients, cfg.Duration)
	for _, name := range []string{"tiny", "go"} {
		code, ok := mods[name]
		if !ok {
			continue
		}
		spec := function.DefaultSpec("increment", "1", code)
		// Baseline 1: the WebAssembly call alone.
		rt, err := execute.New(execute.DefaultConfig())
		if err != nil {
			return err
		}
		if _, err := rt.Deploy(context.Background(), function.Deployment{Spec: spec, Code: code}); err != nil {
			return err
		}
		wasm := run.drive(cfg.Clients, func(c, i int) error {
			var id [32]byte
			rand.Read(id[:])
			_, err := rt.Invoke(context.Background(), spec, id, []byte(`{"value":100}`))
			return err
		})
		rt.Close()
		for _, groups := range []int{1, 3} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			lc, err := server.StartLocal(ctx, server.LocalConfig{Dir: fmt.Sprintf("%s/%s-%d", dir, name, groups), Groups: groups, Replicas: 3, Base: &base, API: unlimited})
			cancel()
			if err != nil {
				return err
			}
			payload, _ := function.Deployment{Spec: spec, Code: code}.MarshalBinary()
			gw := lc.Nodes[0]
			for g := 0; g < groups; g++ {
				if _, err := gw.Submit(context.Background(), chain.Tx{Kind: chain.TxDeploy, Group: uint32(g), Payload: payload}); err != nil {
					lc.Close()
					return err
				}
			}
			// Compile the module on every node first: the first call of a
			// Go module on a node costs about a second of compilation.
			for _, n := range lc.Nodes {
				if err := n.CheckDeployment(context.Background(), function.Deployment{Spec: spec, Code: code}); err != nil {
					lc.Close()
					return err
				}
			}
			// Baseline 2: the bare ledger write path, same cluster, same clients.
			ledger := run.drive(cfg.Clients, func(c, i int) error {
				_, err := gw.Submit(context.Background(), chain.Tx{Kind: chain.TxData, Group: uint32(c % groups), Payload: []byte(`{"value":100}`)})
				return err
			})
			session := make([]byte, 32)
			rand.Read(session)
			inv := run.drive(cfg.Clients, func(c, i int) error {
				var req cluster.InvokeRequest
				rand.Read(req.RequestID[:])
				key, err := election.DeriveKey(session, req.RequestID[:])
				if err != nil {
					return err
				}
				req.Group, req.Function, req.Input, req.ElectionKey, req.KeyID = c%groups, "increment", []byte(`{"value":100}`), key, "bench"
				_, err = gw.Invoke(context.Background(), req)
				return err
			})
			lc.Close()
			label := fmt.Sprintf("%s increment, %d group(s)", name, groups)
			tab.row("wasm call alone ("+name+")", 13, cfg.Clients, wasm, wasm)
			tab.row("ledger submit, "+fmt.Sprint(groups)+" group(s)", 13, cfg.Clients, ledger, ledger)
			tab.row("verified invoke: "+label+" vs submit", 13, cfg.Clients, inv, ledger)
		}
	}
	tab.print()
	return nil
}
