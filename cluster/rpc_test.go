package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// startRPC serves an echo handler for mStatus on a loopback mux with the
// given RPC timeout and returns its address.
func startRPC(t *testing.T, timeout time.Duration) (string, *rpcServer) {
	t.Helper()
	return startRPCWith(t, timeout, map[method]rpcHandler{mStatus: func(_ context.Context, body []byte) (any, error) {
		return len(body), nil
	}})
}

// startRPCWith serves handlers on a loopback mux with the given RPC
// timeout and returns its address.
func startRPCWith(t *testing.T, timeout time.Duration, handlers map[method]rpcHandler) (string, *rpcServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, hclog.NewNullLogger(), connRPC)
	s := &rpcServer{
		ln:       m.subs[connRPC],
		logger:   hclog.NewNullLogger(),
		handlers: handlers,
		timeout:  timeout,
		conns:    map[net.Conn]struct{}{},
	}
	go m.serve()
	go s.serve()
	t.Cleanup(func() { m.close(); s.close() })
	return ln.Addr().String(), s
}

// TestRPCDeclaredFrameCostsWhatArrives: peers that declare the largest
// frame and send a few bytes of it cost the node about what they sent,
// not what they declared, and each stalled connection is closed once the
// RPC timeout passes.
func TestRPCDeclaredFrameCostsWhatArrives(t *testing.T) {
	const peers = 8
	timeout := 500 * time.Millisecond
	addr, _ := startRPC(t, timeout)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, peers)
	sent := make([]time.Time, peers)
	for i := range conns {
		start := time.Now() // the server's deadline starts after this
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := []byte{connRPC, byte(mStatus), 0, 0, 0, 0, 'h', 'a', 'l', 'f'}
		binary.BigEndian.PutUint32(frame[2:], maxFrame)
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		conns[i], sent[i] = c, start
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if err == nil || n > 0 {
			t.Fatalf("peer %d: the server answered a half frame", i)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("peer %d: the stalled connection was not closed within 60s", i)
		}
		if d := time.Since(sent[i]); d < timeout {
			t.Fatalf("peer %d: closed after %v, before the %v timeout", i, d, timeout)
		}
	}
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d peers declaring %d MiB each: %.1f MiB allocated", peers, maxFrame>>20, float64(grew)/(1<<20))
	if grew > maxFrame/2 {
		t.Fatalf("%d half frames allocated %d bytes; a declared frame must cost what arrives", peers, grew)
	}
}

// TestRPCLargeFrameAndIdlePool: a frame many times the first chunk
// arrives whole, and a pooled connection idle for longer than the RPC
// timeout still serves the next call (only a started frame is bounded).
func TestRPCLargeFrameAndIdlePool(t *testing.T) {
	timeout := 300 * time.Millisecond
	addr, s := startRPC(t, timeout)
	c := newRPCClient(5*time.Second, dialer{}, nil)
	defer c.close()
	big := bytes.Repeat([]byte("x"), 3*frameChunk+17)
	var got int
	if err := c.call(context.Background(), addr, mStatus, string(big), &got); err != nil {
		t.Fatal(err)
	}
	if got != len(big)+2 { // the JSON string's quotes
		t.Fatalf("server read %d bytes, want %d", got, len(big)+2)
	}
	time.Sleep(3 * timeout) // the pooled connection idles past the timeout
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d server connections after an idle period, want the pooled 1", open)
	}
	if err := c.call(context.Background(), addr, mStatus, "again", &got); err != nil {
		t.Fatalf("call on the idle pooled connection: %v", err)
	}
}

// TestRPCPoolKeepsPeakConcurrency: after a burst of concurrent calls to
// one address, the pool keeps a connection for each, so a second burst of
// the same size dials nothing (a dial is a TLS handshake in a cluster).
func TestRPCPoolKeepsPeakConcurrency(t *testing.T) {
	const burst = 100
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	m := newMux(ln, hclog.NewNullLogger(), connRPC)
	s := &rpcServer{ln: m.subs[connRPC], logger: hclog.NewNullLogger(), timeout: 30 * time.Second, conns: map[net.Conn]struct{}{},
		handlers: map[method]rpcHandler{mStatus: func(ctx context.Context, _ []byte) (any, error) {
			// The first burst's calls wait for each other, so that all
			// of them are in flight at once.
			mu.Lock()
			if arrived++; arrived == burst {
				close(all)
			}
			mu.Unlock()
			select {
			case <-all:
				return 0, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}}
	go m.serve()
	go s.serve()
	t.Cleanup(func() { m.close(); s.close() })
	addr := ln.Addr().String()
	c := newRPCClient(30*time.Second, dialer{}, nil)
	defer c.close()
	accepted := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns)
	}
	for round := 1; round <= 2; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		for range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- c.call(context.Background(), addr, mStatus, struct{}{}, nil)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		c.mu.Lock()
		idle := len(c.idle[addr])
		c.mu.Unlock()
		if idle != burst || accepted() != burst {
			t.Fatalf("round %d: %d idle connections, the server holds %d; want %d and %d", round, idle, accepted(), burst, burst)
		}
	}
}
