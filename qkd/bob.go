package qkd

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
)

// Bob is the endpoint that measured the qubits. He drives the block: every
// step is a request to Alice and her reply. A Bob runs one block once and
// is not safe for concurrent use.
type Bob struct {
	cfg   Config
	block uint64
	rec   BobRecord
	auth  *AuthStore
	pub   source // Bob's public random choices (sample, shuffles, hash seeds)
	ids   source // key IDs
	t     Transport
	ctx   context.Context

	next  uint64 // Bob's next pad (even)
	start uint64 // high-water mark when the block began
	ran   bool
	stats Stats
}

// NewBob prepares Bob for block number block with his device record. With
// cfg.Seed set, his public random choices and the key IDs are reproducible.
func NewBob(cfg Config, block uint64, rec BobRecord, auth *AuthStore) (*Bob, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rec.Detected == nil || rec.Bases == nil || rec.Results == nil ||
		rec.Bases.Len() != rec.Len() || rec.Results.Len() != rec.Len() {
		return nil, fmt.Errorf("%w: bob record", ErrInvalidConfig)
	}
	if auth == nil {
		return nil, fmt.Errorf("%w: nil auth store", ErrInvalidConfig)
	}
	return &Bob{cfg: cfg, block: block, rec: rec, auth: auth,
		pub:   blockStream(cfg.Seed, block, "bob-public"),
		ids:   blockStream(cfg.Seed, block, "key-ids"),
		stats: Stats{Mode: ModeFull, Block: block, Qubits: rec.Len(), Threshold: cfg.QBERThreshold}}, nil
}

// Pads are split by parity so that no pad can ever authenticate two
// different messages: Bob sends only with even pad indices, Alice only with
// odd ones, and each party's indices only increase.
func evenAtLeast(j uint64) uint64 { return j + j&1 }
func oddAtLeast(j uint64) uint64  { return j | 1 }

// exchange seals m, sends it and opens the reply, which must be of type
// want or an Abort (returned as an error).
func (b *Bob) exchange(m *Message, want MsgType) (*Message, error) {
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	m.Block, m.Offset = b.block, b.next
	req, err := b.auth.seal(m)
	if err != nil {
		return nil, err
	}
	b.stats.Messages++
	// The pad after the request belongs to Alice's reply: never send with it.
	b.next = m.Offset + 2
	resp, err := b.t.RoundTrip(b.ctx, req)
	if err != nil {
		return nil, fmt.Errorf("qkd: transport: %w", err)
	}
	off, err := peekOffset(resp)
	if err != nil {
		return nil, err
	}
	if off&1 == 0 || off <= m.Offset || off > m.Offset+1+maxPadSkip {
		return nil, fmt.Errorf("%w: reply pad offset %d after request %d", ErrAuthFailed, off, m.Offset)
	}
	b.next = max(b.next, evenAtLeast(off+1))
	r, err := b.auth.open(resp)
	if err != nil {
		return nil, err
	}
	b.stats.Messages++
	if r.Block != b.block {
		return nil, fmt.Errorf("%w: reply for block %d", ErrMismatch, r.Block)
	}
	if r.Type == MsgAbort {
		return nil, peerAbortErr(r)
	}
	if off != m.Offset+1 {
		return nil, fmt.Errorf("%w: reply pad offset %d, expected %d", ErrAuthFailed, off, m.Offset+1)
	}
	if r.Type != want {
		return nil, fmt.Errorf("%w: got %s, expected %s", ErrUnexpectedMessage, r.Type, want)
	}
	return r, nil
}

// notify tells Alice that Bob aborts (best effort; no reply expected).
func (b *Bob) notify(cause error) {
	m := &Message{Type: MsgAbort, Block: b.block, Offset: evenAtLeast(max(b.next, b.auth.HighWater())),
		Length: abortCode(cause), Reason: cause.Error()}
	req, err := b.auth.seal(m)
	if err != nil {
		return
	}
	b.stats.Messages++
	b.next = m.Offset + 2
	_, _ = b.t.RoundTrip(b.ctx, req)
}

// Run executes the block over t and returns Bob's result. Any error wraps
// ErrAborted; errors.Is names the reason (ErrQBERTooHigh, ErrAuthFailed,
// ErrPeerAborted, ...). An aborted block yields no key.
func (b *Bob) Run(ctx context.Context, t Transport) (BlockResult, error) {
	if b.ran {
		return BlockResult{}, ErrClosed
	}
	b.ran = true
	b.ctx, b.t = ctx, t
	b.start = b.auth.HighWater()
	b.next = evenAtLeast(b.start)
	res, err := b.run()
	b.stats.AuthBits = 8 * padBytes * int(b.auth.HighWater()-b.start)
	if err != nil {
		err = abortErr(err)
		if !isPeerAbort(err) {
			b.notify(err)
		}
		b.stats.Aborted, b.stats.AbortReason = true, err.Error()
		b.stats.sanitize()
		return BlockResult{Stats: b.stats}, err
	}
	b.stats.sanitize()
	res.Stats = b.stats
	return res, nil
}

func isPeerAbort(err error) bool { return errors.Is(err, ErrPeerAborted) }

func (b *Bob) run() (BlockResult, error) {
	st := &b.stats
	// Sifting: announce detections and bases, learn Alice's bases.
	det := b.rec.Detected
	bases := b.rec.Bases.Select(det)
	r, err := b.exchange(&Message{Type: MsgDetect, Length: b.rec.Len(), A: det, B: bases}, MsgBases)
	if err != nil {
		return BlockResult{}, err
	}
	if r.A == nil || r.A.Len() != bases.Len() {
		return BlockResult{}, fmt.Errorf("%w: %d bases for %d detections", ErrMismatch, r.A.Len(), bases.Len())
	}
	match := NewBits(bases.Len())
	for i := range match.w {
		match.w[i] = ^(bases.w[i] ^ r.A.w[i])
	}
	match.clearTail()
	sifted := b.rec.Results.Select(det).Select(match)
	s := sifted.Len()
	st.Detected, st.Sifted = det.OnesCount(), s
	k := b.cfg.sampleSize(s)
	if s < 2 || k >= s {
		return BlockResult{}, fmt.Errorf("%w: %d sifted bits", ErrTooFewBits, s)
	}

	// Parameter estimation on a uniformly random sample of k sifted bits.
	mask := sampleMask(b.pub, s, k)
	mine := sifted.Select(mask)
	r, err = b.exchange(&Message{Type: MsgSample, A: mask, B: mine}, MsgSampleReply)
	if err != nil {
		return BlockResult{}, err
	}
	if r.A == nil || r.A.Len() != k {
		return BlockResult{}, fmt.Errorf("%w: %d sample bits, expected %d", ErrMismatch, r.A.Len(), k)
	}
	errs := mine.Distance(r.A)
	q := float64(errs) / float64(k)
	st.SampleBits, st.SampleErrors, st.QBER = k, errs, q
	for i := range mask.w {
		mask.w[i] = ^mask.w[i]
	}
	mask.clearTail()
	key := sifted.Select(mask)
	if err := checkEstimate(b.cfg, q, errs, k, key.Len()); err != nil {
		return BlockResult{}, err
	}

	// Cascade.
	casc := newCascadeBob(key, func(m *Message) (*Bits, error) {
		r, err := b.exchange(m, MsgParities)
		if err != nil {
			return nil, err
		}
		if r.A == nil {
			return nil, fmt.Errorf("%w: parities missing", ErrMalformed)
		}
		return r.A, nil
	})
	if err := casc.run(q, b.cfg.CascadePasses, func() []byte { return randomSeed(b.pub) }); err != nil {
		return BlockResult{}, err
	}
	n := key.Len()
	st.ReconciledBits, st.CorrectedErrors, st.LeakedBits, st.CascadeRounds = n, casc.corrected, casc.leak, casc.rounds
	if casc.corrected > 0 {
		st.Efficiency = float64(casc.leak) / (float64(n) * BinaryEntropy(float64(casc.corrected)/float64(n)))
	}

	// Verification hash with a fresh public seed.
	t := b.cfg.verifyBits()
	vseed := randomBits(b.pub, n+t-1)
	h, err := ToeplitzHash(vseed, key, t)
	if err != nil {
		return BlockResult{}, err
	}
	if _, err := b.exchange(&Message{Type: MsgVerify, Length: casc.leak, A: vseed, B: h}, MsgVerifyOK); err != nil {
		return BlockResult{}, err
	}
	st.VerifyBits = t

	// Privacy amplification. Amplify uses pad b.next and Done b.next+1, so
	// both stores end the block at b.next+2.
	plan := planBlock(b.cfg, n, k, q, casc.leak, b.auth.availableFrom(b.next+2))
	plan.fill(st, b.cfg)
	if err := plan.check(); err != nil {
		return BlockResult{}, err
	}
	ids := make([][16]byte, plan.keys)
	for i := range ids {
		id, err := uuidFrom(b.ids)
		if err != nil {
			return BlockResult{}, fmt.Errorf("qkd: key id: %w", err)
		}
		ids[i] = id
	}
	pseed := randomBits(b.pub, n+plan.output-1)
	if _, err := b.exchange(&Message{Type: MsgAmplify, Length: plan.output, A: pseed, IDs: ids}, MsgDone); err != nil {
		return BlockResult{}, err
	}
	out, err := ToeplitzHash(pseed, key, plan.output)
	if err != nil {
		return BlockResult{}, err
	}
	st.AuthBits = 8 * padBytes * int(b.auth.HighWater()-b.start)
	st.NetBits = plan.output - st.AuthBits
	if s > 0 {
		st.SecretFraction = float64(plan.output) / float64(s)
	}
	if math.IsNaN(st.Efficiency) {
		st.Efficiency = 0
	}
	return BlockResult{Output: out, AuthRefill: plan.refill, KeyIDs: ids}, nil
}

// sourceReader adapts a source to io.Reader.
type sourceReader struct{ s source }

func (r sourceReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); {
		v := r.s.Uint64()
		for j := 0; j < 8 && i < len(p); j++ {
			p[i] = byte(v >> (8 * j))
			i++
		}
	}
	return len(p), nil
}

func uuidFrom(s source) (uuid.UUID, error) { return uuid.NewRandomFromReader(sourceReader{s}) }
