package qkd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// endpoints builds Alice and Bob for one block over a fresh transmission.
func endpoints(t *testing.T, cfg Config, block uint64, aauth, bauth *AuthStore) (*Alice, *Bob) {
	t.Helper()
	ar, br, err := Simulate(cfg.Channel, cfg.Qubits, append(cfg.Seed, byte(block)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAlice(cfg, block, ar, aauth)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBob(cfg, block, br, bauth)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func authPair(t *testing.T, n int) (*AuthStore, *AuthStore) {
	t.Helper()
	boot := bytes.Repeat([]byte{0x5a, 0xc3, 0x17}, n/3+1)[:n]
	a, err := NewAuthStore(boot)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAuthStore(boot)
	return a, b
}

// TestIdenticalKeys: whenever no abort, both endpoints hold identical
// output, refill and key IDs.
func TestIdenticalKeys(t *testing.T) {
	for i, p := range []float64{0, 0.01, 0.04, 0.08, 0.1} {
		cfg := testConfig(fmt.Sprint("identical", i), scale(1<<18, 1<<16))
		cfg.Channel.Noise = p
		aa, ba := authPair(t, 16+cfg.AuthReserve)
		a, b := endpoints(t, cfg, 1, aa, ba)
		bres, berr := b.Run(context.Background(), LocalTransport(a))
		ares, aerr := a.Result()
		if (berr == nil) != (aerr == nil) {
			t.Fatalf("p=%v: Bob %v, Alice %v", p, berr, aerr)
		}
		if berr != nil {
			if !errors.Is(berr, ErrNoSecretKey) {
				t.Fatalf("p=%v: %v", p, berr)
			}
			continue
		}
		if !bres.Output.Equal(ares.Output) || bres.AuthRefill != ares.AuthRefill || len(bres.KeyIDs) != len(ares.KeyIDs) {
			t.Fatalf("p=%v: outputs differ", p)
		}
		for k := range bres.KeyIDs {
			if bres.KeyIDs[k] != ares.KeyIDs[k] {
				t.Fatalf("p=%v: key ID %d differs", p, k)
			}
		}
		if aa.HighWater() != ba.HighWater() || aa.Available() != ba.Available() {
			t.Fatalf("p=%v: auth stores out of step: %d/%d vs %d/%d", p, aa.HighWater(), aa.Available(), ba.HighWater(), ba.Available())
		}
		st := bres.Stats
		if st.AuthBits != 128*st.Messages || ares.Stats.Messages != st.Messages {
			t.Errorf("p=%v: auth bits %d for %d messages (Alice counted %d)", p, st.AuthBits, st.Messages, ares.Stats.Messages)
		}
	}
}

func TestLinkManyBlocksAuthBalance(t *testing.T) {
	cfg := testConfig("link", scale(1<<18, 1<<17))
	cfg.Channel.Noise = 0.03
	l, err := NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := l.AuthAvailable()
	ids := map[[16]byte]bool{}
	for i := 0; i < 3; i++ {
		blk, err := l.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l.AuthAvailable() < start {
			t.Errorf("block %d: auth store %d bytes, started with %d: consumption not refilled", i, l.AuthAvailable(), start)
		}
		for _, k := range blk.Keys {
			if ids[k.ID] || len(k.Bytes) != cfg.KeyBits/8 {
				t.Fatalf("duplicate ID or bad size: %v %d", k.ID, len(k.Bytes))
			}
			ids[k.ID] = true
		}
		if blk.Stats.NetBits != blk.Stats.OutputBits-blk.Stats.AuthBits {
			t.Errorf("net bits %+v", blk.Stats)
		}
	}
}

// tamperTransport lets a test alter the i-th request or reply.
func tamperTransport(a *Alice, f func(i int, req bool, b []byte) []byte) Transport {
	i := 0
	return TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		i++
		req = f(i, true, req)
		reply, _ := a.Handle(req)
		return f(i, false, reply), nil
	})
}

func flipByte(b []byte, at int) []byte {
	c := append([]byte(nil), b...)
	if at < 0 {
		at += len(c)
	}
	c[at] ^= 0x01
	return c
}

// TestForgedMessagesAbort: altering any classical message, in either
// direction, at the start, in Cascade or at the very end, makes both
// endpoints abort without a key.
func TestForgedMessagesAbort(t *testing.T) {
	cfg := testConfig("forge", scale(1<<17, 1<<15))
	cfg.Channel.Noise = 0.04
	// Count the exchanges of an untouched block.
	aa, ba := authPair(t, 16+cfg.AuthReserve)
	a, b := endpoints(t, cfg, 1, aa, ba)
	total := 0
	if _, err := b.Run(context.Background(), tamperTransport(a, func(i int, _ bool, x []byte) []byte { total = i; return x })); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		at   int  // exchange number
		req  bool // request (Bob->Alice) or reply
		pos  int  // byte to flip
	}{
		{"detect payload", 1, true, 40},
		{"bases reply", 1, false, 30},
		{"sample tag", 2, true, -1},
		{"cascade header offset", 3, true, 19},
		{"cascade parities", 5, false, 25},
		{"message type", 4, true, 3},
		{"verify", total - 1, true, 30},
		{"amplify", total, true, 40},
		{"done reply", total, false, -3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			aa, ba := authPair(t, 16+cfg.AuthReserve)
			a, b := endpoints(t, cfg, 1, aa, ba)
			res, berr := b.Run(context.Background(), tamperTransport(a, func(i int, req bool, x []byte) []byte {
				if i == c.at && req == c.req && len(x) > 0 {
					return flipByte(x, c.pos)
				}
				return x
			}))
			_, aerr := a.Result()
			if berr == nil || !errors.Is(berr, ErrAborted) {
				t.Fatalf("Bob did not abort: %v", berr)
			}
			if res.Output != nil {
				t.Fatal("Bob produced a key")
			}
			if !errors.Is(berr, ErrAuthFailed) && !errors.Is(aerr, ErrAuthFailed) {
				t.Errorf("neither side names the forgery: Bob %v / Alice %v", berr, aerr)
			}
			// Alice must not end with a key unless she finished before the
			// forgery (a forged Done): then Bob aborts and the Link discards.
			if aerr == nil && !(c.at == total && !c.req) {
				t.Errorf("Alice completed despite forgery")
			}
		})
	}
}

func TestForgedInjectionAndReplay(t *testing.T) {
	cfg := testConfig("inject", scale(1<<16, 1<<15))
	aa, ba := authPair(t, 16+cfg.AuthReserve)
	a, b := endpoints(t, cfg, 1, aa, ba)
	var first []byte
	_, berr := b.Run(context.Background(), tamperTransport(a, func(i int, req bool, x []byte) []byte {
		switch {
		case i == 1 && req:
			first = x
		case i == 2 && req:
			return first // replay Bob's first request
		}
		return x
	}))
	if !errors.Is(berr, ErrAborted) {
		t.Fatalf("replay not rejected: %v", berr)
	}
	if _, aerr := a.Result(); !errors.Is(aerr, ErrAuthFailed) {
		t.Errorf("Alice: %v, want ErrAuthFailed", aerr)
	}

	// A message forged without the key: right format, guessed tag.
	aa, ba = authPair(t, 16+cfg.AuthReserve)
	a, _ = endpoints(t, cfg, 1, aa, ba)
	m := &Message{Type: MsgDetect, Block: 1, Offset: 0, Length: cfg.Qubits, A: NewBits(cfg.Qubits), B: NewBits(0)}
	body, _ := m.MarshalBody()
	reply, err := a.Handle(append(body, make([]byte, 16)...))
	if !errors.Is(err, ErrAuthFailed) || reply == nil {
		t.Fatalf("forged detect: %v (reply %d bytes)", err, len(reply))
	}
	if _, err := a.Handle(append(body, make([]byte, 16)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("closed Alice answered again: %v", err)
	}
}

func TestLinkRecoversAfterForgery(t *testing.T) {
	cfg := testConfig("recover", scale(1<<17, 1<<16))
	cfg.Channel.Noise = 0.02
	l, err := NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Desynchronise on purpose as a forgery would: Alice has used pads Bob
	// has not.
	if _, err := l.aliceAuth.take(l.aliceAuth.HighWater() + 3); err != nil {
		t.Fatal(err)
	}
	blk, err := l.Next(context.Background())
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("first block: %v", err)
	}
	if blk.Keys != nil {
		t.Fatal("keys from an aborted block")
	}
	if _, err := l.Next(context.Background()); err != nil {
		t.Fatalf("block after resync: %v", err)
	}
}

func TestAuthExhaustion(t *testing.T) {
	cfg := testConfig("exhaust", 1<<14)
	cfg.BootstrapKey = bytes.Repeat([]byte{0x5a}, MinBootstrapBytes+16) // hash key + 2 pads
	st, err := Run(cfg)
	if !errors.Is(err, ErrAuthKeyExhausted) || !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v (stats %+v)", err, st)
	}
}

func TestConfigValidate(t *testing.T) {
	mods := []func(*Config){
		func(c *Config) { c.Mode = "quantum" },
		func(c *Config) { c.Qubits = 0 },
		func(c *Config) { c.Qubits = maxQubits + 1 },
		func(c *Config) { c.QBERThreshold = 0.6 },
		func(c *Config) { c.QBERStep = 0 },
		func(c *Config) { c.SampleFraction = 1 },
		func(c *Config) { c.CascadePasses = 0 },
		func(c *Config) { c.EpsSec = 0 },
		func(c *Config) { c.EpsCor = 2 },
		func(c *Config) { c.KeyBits = 100 },
		func(c *Config) { c.AuthReserve = 1 },
		func(c *Config) { c.BootstrapKey = []byte{1, 2, 3} },
		func(c *Config) { c.Mode, c.PaperAttempts = ModePaper, 0 },
		func(c *Config) { c.Channel.Noise = 3 },
	}
	for i, m := range mods {
		c := DefaultConfig()
		m(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: %v", i, err)
		}
		if _, err := Run(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Run: %v", i, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func TestTooFewQubits(t *testing.T) {
	st, err := Run(testConfig("tiny", 100))
	if !errors.Is(err, ErrTooFewBits) || !errors.Is(err, ErrAborted) || st.Keys != 0 {
		t.Fatalf("err = %v stats %+v", err, st)
	}
	st, err = Run(testConfig("small", 4000))
	if !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("4000 qubits: err = %v (secure %d)", err, st.SecureBits)
	}
}

func TestStatsOutput(t *testing.T) {
	cfg := testConfig("stats", 1<<15)
	cfg.Channel.Eve = 1
	st, _ := Run(cfg)
	s := st.String()
	for _, want := range []string{"mode", "full", "QBER", "ABORTED", "threshold"} {
		if !bytes.Contains([]byte(s), []byte(want)) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}

// TestVerificationCatchesResidualErrors: with one Cascade pass at 5% QBER
// some errors survive; the verification hash catches them and both sides
// abort naming the reason.
func TestVerificationCatchesResidualErrors(t *testing.T) {
	cfg := testConfig("verify", scale(1<<17, 1<<16))
	cfg.Channel.Noise = 0.1
	cfg.CascadePasses = 1
	aa, ba := authPair(t, 16+cfg.AuthReserve)
	a, b := endpoints(t, cfg, 1, aa, ba)
	_, berr := b.Run(context.Background(), LocalTransport(a))
	_, aerr := a.Result()
	if !errors.Is(berr, ErrVerifyFailed) || !errors.Is(berr, ErrPeerAborted) || !errors.Is(aerr, ErrVerifyFailed) {
		t.Fatalf("Bob: %v\nAlice: %v", berr, aerr)
	}
}

func TestBothSidesNameQBERAbort(t *testing.T) {
	cfg := testConfig("qber-both", 1<<15)
	cfg.Channel.Eve = 1
	aa, ba := authPair(t, 16+cfg.AuthReserve)
	a, b := endpoints(t, cfg, 1, aa, ba)
	_, berr := b.Run(context.Background(), LocalTransport(a))
	_, aerr := a.Result()
	if !errors.Is(berr, ErrQBERTooHigh) || !errors.Is(aerr, ErrQBERTooHigh) {
		t.Fatalf("Bob: %v\nAlice: %v", berr, aerr)
	}
	if aa.HighWater() != ba.HighWater() {
		t.Errorf("pads out of step after abort: %d vs %d", aa.HighWater(), ba.HighWater())
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"full": ModeFull, "paper": ModePaper, "": ModeFull} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("bb92"); !errors.Is(err, ErrInvalidConfig) {
		t.Error("bad mode accepted")
	}
}

// TestNoPadAuthenticatesTwoMessages: whatever is garbled or dropped, no
// pad index appears on two different frames (which would leak the hash key
// of the one-time MAC).
func TestNoPadAuthenticatesTwoMessages(t *testing.T) {
	cfg := testConfig("pads", 1<<15)
	cfg.Channel.Noise = 0.04
	for at := 1; at <= 8; at++ {
		for _, req := range []bool{true, false} {
			for _, mode := range []string{"flip", "drop"} {
				aa, ba := authPair(t, 16+cfg.AuthReserve)
				a, b := endpoints(t, cfg, 1, aa, ba)
				used := map[uint64][]byte{}
				record := func(x []byte) {
					if off, err := peekOffset(x); err == nil {
						if prev, ok := used[off]; ok && !bytes.Equal(prev, x) {
							t.Fatalf("at=%d req=%v %s: pad %d on two frames", at, req, mode, off)
						}
						used[off] = x
					}
				}
				n := 0
				_, _ = b.Run(context.Background(), TransportFunc(func(_ context.Context, r []byte) ([]byte, error) {
					n++
					record(r)
					if n == at && req {
						if mode == "drop" {
							return nil, nil
						}
						r = flipByte(r, -1)
					}
					reply, _ := a.Handle(r)
					if reply != nil {
						record(reply)
					}
					if n == at && !req && reply != nil {
						if mode == "drop" {
							return nil, nil
						}
						reply = flipByte(reply, -1)
					}
					return reply, nil
				}))
			}
		}
	}
}
