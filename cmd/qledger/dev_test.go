package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"qledger/qkd/kme"
)

// TestDevKeyManagerOutlivesTheStart: qledger dev bounds its start (the
// first leaders, the key manager's first keys), but not the key manager:
// a client pool drained after that bound has passed is refilled. (The key
// manager once ran on the start's context, so its refills stopped for
// good a minute after dev started, and sealed submissions failed once
// the first keys were used up.)
func TestDevKeyManagerOutlivesTheStart(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: &out}
	o := devOptions{groups: 1, replicas: 1, dir: t.TempDir(), httpAddr: "127.0.0.1:0", insecure: true, logs: logOptions{level: "error"}}
	const bound = 20 * time.Second
	began := time.Now()
	d, err := a.startDev(o, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	pool, ok := d.ks.KME.Pool("client", d.ks.Gateway)
	if !ok {
		t.Fatal("no key pool for the client")
	}
	time.Sleep(time.Until(began.Add(bound + time.Second))) // the start's context has ended
	client := d.ks.KME.Local("client")
	ctx := context.Background()
	for pool.Stored() >= kme.RefillBelow {
		n := min(64, pool.Stored()-kme.RefillBelow+1) // down to one key below the refill mark
		if _, err := client.EncKeys(ctx, d.ks.Gateway, kme.KeyRequest{Number: &n}); err != nil {
			t.Fatalf("draining the pool (%d stored): %v", pool.Stored(), err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for pool.Stored() < kme.RefillBelow {
		if time.Now().After(deadline) {
			t.Fatalf("the key pool was not refilled (%d keys stored)\n%s", pool.Stored(), out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
