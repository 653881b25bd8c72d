package qkd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Link is a simulated QKD link: Alice's and Bob's devices, the channel
// between them and both post-processing endpoints in one process. Each call
// to Next sends one block of qubits and, unless the block aborts, returns
// keys that both ends hold identically, with IDs. The link keeps both
// authentication stores: it tops them up from each completed block and, after
// an abort, moves both past every pad either side may have used.
//
// A Link is used by one goroutine at a time.
type Link struct {
	cfg                Config
	aliceAuth, bobAuth *AuthStore
	block              uint64
}

// Block is the outcome of one call to Link.Next.
type Block struct {
	Stats Stats
	Keys  []Key
}

// NewLink validates cfg and creates both authentication stores from the
// bootstrap key (random if cfg.BootstrapKey is nil).
func NewLink(cfg Config) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	boot := cfg.BootstrapKey
	if boot == nil {
		src := blockStream(cfg.Seed, 0, "bootstrap-key")
		boot = make([]byte, macKeyBytes+cfg.AuthReserve)
		_, _ = sourceReader{src}.Read(boot)
	}
	a, err := NewAuthStore(boot)
	if err != nil {
		return nil, err
	}
	b, _ := NewAuthStore(boot)
	return &Link{cfg: cfg, aliceAuth: a, bobAuth: b}, nil
}

// AuthAvailable returns the unused authentication key bytes (equal at both
// ends between blocks).
func (l *Link) AuthAvailable() int { return l.bobAuth.Available() }

// Next runs one block. On abort it returns the statistics so far and an
// error wrapping ErrAborted and the reason; no key is issued.
func (l *Link) Next(ctx context.Context) (Block, error) {
	l.block++
	start := time.Now()
	var blk Block
	var err error
	if l.cfg.Mode == ModePaper {
		blk, err = l.nextPaper()
	} else {
		blk, err = l.nextFull(ctx)
	}
	st := &blk.Stats
	st.Mode, st.Block, st.ModelQBER, st.Threshold = l.cfg.Mode, l.block, l.cfg.Channel.ModelQBER(), l.cfg.QBERThreshold
	st.Seconds = time.Since(start).Seconds()
	if err != nil {
		st.Aborted, st.AbortReason = true, err.Error()
	} else if st.Seconds > 0 {
		st.NetBitsPerSec = float64(st.NetBits) / st.Seconds
	}
	st.sanitize()
	return blk, err
}

func (l *Link) blockSeed(attempt int) []byte {
	if l.cfg.Seed == nil {
		return nil
	}
	return append(append([]byte(nil), l.cfg.Seed...), fmt.Sprintf("/block/%d/%d", l.block, attempt)...)
}

func (l *Link) nextFull(ctx context.Context) (Block, error) {
	arec, brec, err := Simulate(l.cfg.Channel, l.cfg.Qubits, l.blockSeed(0))
	if err != nil {
		return Block{}, err
	}
	alice, err := NewAlice(l.cfg, l.block, arec, l.aliceAuth)
	if err != nil {
		return Block{}, err
	}
	bob, err := NewBob(l.cfg, l.block, brec, l.bobAuth)
	if err != nil {
		return Block{}, err
	}
	bres, berr := bob.Run(ctx, LocalTransport(alice))
	ares, aerr := alice.Result()
	blk := Block{Stats: bres.Stats}
	blk.Stats.Attempts = 1
	if berr == nil && aerr != nil {
		berr = aerr
	}
	if berr == nil && !bres.Output.Equal(ares.Output) {
		berr = abortErr(ErrKeyMismatch)
	}
	if berr != nil {
		// Resynchronise: no pad either side touched is ever used again.
		hw := max(l.aliceAuth.HighWater(), l.bobAuth.HighWater())
		l.aliceAuth.SkipTo(hw)
		l.bobAuth.SkipTo(hw)
		return blk, berr
	}
	refill, keys := bres.Split(l.cfg.KeyBits)
	l.aliceAuth.Refill(refill)
	l.bobAuth.Refill(refill)
	blk.Keys = keys
	return blk, nil
}

func (l *Link) nextPaper() (Block, error) {
	var blk Block
	st := &blk.Stats
	var err error
	for attempt := 1; attempt <= l.cfg.PaperAttempts; attempt++ {
		st.Attempts = attempt
		var arec AliceRecord
		var brec BobRecord
		arec, brec, err = Simulate(l.cfg.Channel, l.cfg.Qubits, l.blockSeed(attempt))
		if err != nil {
			return blk, err
		}
		var r PaperResult
		r, err = Paper(arec, brec)
		st.Qubits, st.Detected, st.Sifted = arec.Len(), brec.Detected.OnesCount(), r.AliceSifted.Len()
		st.SampleBits, st.SampleErrors = r.AliceCheck.Len(), r.CheckErrors
		if st.SampleBits > 0 {
			st.QBER = float64(r.CheckErrors) / float64(st.SampleBits)
		}
		if errors.Is(err, ErrCheckFailed) {
			continue
		}
		if err != nil {
			return blk, err
		}
		st.OutputBits, st.NetBits, st.KeyBits = r.Key.Len(), r.Key.Len(), l.cfg.KeyBits
		if st.Sifted > 0 {
			st.SecretFraction = float64(r.Key.Len()) / float64(st.Sifted)
		}
		ids := blockStream(l.cfg.Seed, l.block, "paper-key-ids")
		for s := 0; s+l.cfg.KeyBits <= r.Key.Len(); s += l.cfg.KeyBits {
			id, _ := uuidFrom(ids)
			blk.Keys = append(blk.Keys, Key{ID: id, Bytes: r.Key.Slice(s, s+l.cfg.KeyBits).Bytes()})
		}
		st.Keys = len(blk.Keys)
		if st.Keys == 0 {
			// The protocol succeeded but its key is shorter than one
			// key of the configured size: nothing can be issued.
			return blk, fmt.Errorf("%w: the paper-mode key has %d bits, one key needs %d (send more qubits or lower KeyBits)", ErrTooFewBits, r.Key.Len(), l.cfg.KeyBits)
		}
		return blk, nil
	}
	return blk, fmt.Errorf("%w after %d attempts", err, l.cfg.PaperAttempts)
}

// Run sends one block with cfg and returns its statistics: the function
// behind `qledger qkd run`. On abort the statistics describe how far the
// block got and the error names the reason (errors.Is with ErrAborted,
// ErrQBERTooHigh, ...).
func Run(cfg Config) (Stats, error) { return RunContext(context.Background(), cfg) }

// RunContext is Run with a context that can cancel the post-processing.
func RunContext(ctx context.Context, cfg Config) (Stats, error) {
	l, err := NewLink(cfg)
	if err != nil {
		return Stats{}, err
	}
	b, err := l.Next(ctx)
	return b.Stats, err
}
