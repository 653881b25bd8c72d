package qkd

import (
	"fmt"
	"sync"
)

// Alice is the endpoint that sent the qubits. She answers each of Bob's
// requests with one authenticated reply and never initiates. Handle is safe
// for concurrent use but requests are processed one at a time, in order.
type Alice struct {
	mu    sync.Mutex
	cfg   Config
	block uint64
	rec   AliceRecord
	auth  *AuthStore

	started bool
	next    uint64 // pad offset expected on the next request
	state   MsgType
	closed  bool
	err     error // abort reason, once closed
	pending error // abort decided, told to Bob at his next request
	result  *BlockResult

	sifted  *Bits
	sample  int
	key     *Bits
	qber    float64
	cascade *cascadeAlice
	stats   Stats
}

// NewAlice prepares Alice for block number block with her device record.
// cfg must be the same protocol configuration Bob uses.
func NewAlice(cfg Config, block uint64, rec AliceRecord, auth *AuthStore) (*Alice, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rec.Bits == nil || rec.Bases == nil || rec.Bits.Len() != rec.Bases.Len() {
		return nil, fmt.Errorf("%w: alice record", ErrInvalidConfig)
	}
	if auth == nil {
		return nil, fmt.Errorf("%w: nil auth store", ErrInvalidConfig)
	}
	return &Alice{cfg: cfg, block: block, rec: rec, auth: auth, state: MsgDetect,
		stats: Stats{Mode: ModeFull, Block: block, Qubits: rec.Len(), Threshold: cfg.QBERThreshold}}, nil
}

// Result returns Alice's outcome once the block is over: the result if it
// completed, or the abort error.
func (a *Alice) Result() (BlockResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.result != nil {
		return *a.result, nil
	}
	if a.err != nil {
		return BlockResult{Stats: a.stats}, a.err
	}
	return BlockResult{Stats: a.stats}, fmt.Errorf("%w: block not finished", ErrUnexpectedMessage)
}

// Handle processes one framed request and returns the framed reply, which
// the transport must deliver even when err is non-nil (it is then an Abort
// telling Bob why). A nil reply means there is nothing to send.
func (a *Alice) Handle(req []byte) (reply []byte, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	off, err := peekOffset(req)
	if err != nil {
		return a.abort(err)
	}
	if off&1 != 0 {
		return a.abort(fmt.Errorf("%w: request with odd pad offset %d", ErrAuthFailed, off))
	}
	if !a.started {
		if hwm := a.auth.HighWater(); off < hwm || off > hwm+maxPadSkip {
			return a.abort(fmt.Errorf("%w: first pad offset %d, expected [%d, %d]", ErrAuthFailed, off, hwm, hwm+maxPadSkip))
		}
	} else if off != a.next {
		return a.abort(fmt.Errorf("%w: pad offset %d, expected %d", ErrAuthFailed, off, a.next))
	}
	m, err := a.auth.open(req)
	if err != nil {
		return a.abort(err)
	}
	a.started = true
	a.stats.Messages++
	if m.Block != a.block {
		return a.abort(fmt.Errorf("%w: block %d, expected %d", ErrMismatch, m.Block, a.block))
	}
	if m.Type == MsgAbort {
		a.closed = true
		a.err = peerAbortErr(m)
		if a.pending != nil {
			a.err = abortErr(a.pending)
		}
		a.stats.Aborted, a.stats.AbortReason = true, a.err.Error()
		return nil, a.err
	}
	if a.pending != nil {
		return a.abort(a.pending)
	}
	out, err := a.step(m)
	if err != nil {
		return a.abort(err)
	}
	out.Block, out.Offset = a.block, off+1
	b, err := a.auth.seal(out)
	if err != nil {
		return a.abort(err)
	}
	a.stats.Messages++
	a.next = off + 2
	if out.Type == MsgDone {
		a.closed = true
		a.result.Stats = a.stats
	}
	return b, nil
}

// abort closes the block and returns an authenticated Abort for Bob, sealed
// with Alice's next unused odd pad (Bob never sends with odd pads).
func (a *Alice) abort(cause error) ([]byte, error) {
	a.closed = true
	a.err = abortErr(cause)
	a.stats.Aborted, a.stats.AbortReason = true, cause.Error()
	m := &Message{Type: MsgAbort, Block: a.block, Offset: oddAtLeast(a.auth.HighWater()), Length: abortCode(cause), Reason: cause.Error()}
	b, err := a.auth.seal(m)
	if err != nil {
		return nil, a.err
	}
	a.stats.Messages++
	return b, a.err
}

func (a *Alice) expect(m *Message, types ...MsgType) error {
	for _, t := range types {
		if m.Type == t {
			return nil
		}
	}
	return fmt.Errorf("%w: got %s, expected %v", ErrUnexpectedMessage, m.Type, types)
}

func (a *Alice) step(m *Message) (*Message, error) {
	switch a.state {
	case MsgDetect:
		if err := a.expect(m, MsgDetect); err != nil {
			return nil, err
		}
		return a.onDetect(m)
	case MsgSample:
		if err := a.expect(m, MsgSample); err != nil {
			return nil, err
		}
		return a.onSample(m)
	case MsgCascadePass:
		if err := a.expect(m, MsgCascadePass, MsgCascadeQuery, MsgVerify); err != nil {
			return nil, err
		}
		switch m.Type {
		case MsgCascadePass:
			p, err := a.cascade.startPass(m, a.cfg.CascadePasses)
			return &Message{Type: MsgParities, A: p}, err
		case MsgCascadeQuery:
			p, err := a.cascade.answer(m)
			return &Message{Type: MsgParities, A: p}, err
		}
		return a.onVerify(m)
	case MsgAmplify:
		if err := a.expect(m, MsgAmplify); err != nil {
			return nil, err
		}
		return a.onAmplify(m)
	}
	return nil, fmt.Errorf("%w: %s in state %s", ErrUnexpectedMessage, m.Type, a.state)
}

func (a *Alice) onDetect(m *Message) (*Message, error) {
	n := a.rec.Len()
	if m.Length != n || m.A == nil || m.A.Len() != n || m.B == nil || m.B.Len() != m.A.OnesCount() {
		return nil, fmt.Errorf("%w: detect message for %d pulses (have %d)", ErrMismatch, m.Length, n)
	}
	bases := a.rec.Bases.Select(m.A)
	match := NewBits(bases.Len())
	for i := range match.w {
		match.w[i] = ^(bases.w[i] ^ m.B.w[i])
	}
	match.clearTail()
	a.sifted = a.rec.Bits.Select(m.A).Select(match)
	a.stats.Detected, a.stats.Sifted = m.A.Len(), a.sifted.Len()
	a.state = MsgSample
	return &Message{Type: MsgBases, A: bases}, nil
}

func (a *Alice) onSample(m *Message) (*Message, error) {
	s := a.sifted.Len()
	k := a.cfg.sampleSize(s)
	if m.A == nil || m.A.Len() != s || m.A.OnesCount() != k || m.B == nil || m.B.Len() != k {
		return nil, fmt.Errorf("%w: sample of %d over %d sifted bits (expected %d)", ErrMismatch, m.B.Len(), m.A.Len(), k)
	}
	mine := a.sifted.Select(m.A)
	errs := mine.Distance(m.B)
	a.sample = k
	a.qber = float64(errs) / float64(k)
	a.stats.SampleBits, a.stats.SampleErrors, a.stats.QBER = k, errs, a.qber
	rest := NewBits(s)
	for i := range rest.w {
		rest.w[i] = ^m.A.w[i]
	}
	rest.clearTail()
	a.key = a.sifted.Select(rest)
	a.pending = checkEstimate(a.cfg, a.qber, errs, k, a.key.Len())
	a.cascade = &cascadeAlice{key: a.key, q: a.qber}
	a.state = MsgCascadePass
	return &Message{Type: MsgSampleReply, A: mine}, nil
}

// checkEstimate is the abort rule after parameter estimation, applied by
// both endpoints to the same numbers.
func checkEstimate(cfg Config, q float64, errs, k, n int) error {
	if q > cfg.QBERThreshold {
		return fmt.Errorf("%w: QBER %.2f%% (%d errors in %d sample bits) above threshold %.2f%%",
			ErrQBERTooHigh, 100*q, errs, k, 100*cfg.QBERThreshold)
	}
	if n < 64 {
		return fmt.Errorf("%w: %d bits left after sampling", ErrTooFewBits, n)
	}
	return nil
}

func (a *Alice) onVerify(m *Message) (*Message, error) {
	if len(a.cascade.passes) != a.cfg.CascadePasses {
		return nil, fmt.Errorf("%w: verify after %d of %d passes", ErrUnexpectedMessage, len(a.cascade.passes), a.cfg.CascadePasses)
	}
	if m.Length != a.cascade.leak {
		return nil, fmt.Errorf("%w: Bob counts %d leaked bits, Alice %d", ErrMismatch, m.Length, a.cascade.leak)
	}
	n, t := a.key.Len(), a.cfg.verifyBits()
	if m.A == nil || m.A.Len() != n+t-1 || m.B == nil || m.B.Len() != t {
		return nil, fmt.Errorf("%w: verify seed/hash sizes", ErrMismatch)
	}
	h, err := ToeplitzHash(m.A, a.key, t)
	if err != nil {
		return nil, err
	}
	if !h.Equal(m.B) {
		return nil, fmt.Errorf("%w: %d-bit hashes differ", ErrVerifyFailed, t)
	}
	a.stats.ReconciledBits, a.stats.LeakedBits, a.stats.VerifyBits = n, a.cascade.leak, t
	a.state = MsgAmplify
	return &Message{Type: MsgVerifyOK}, nil
}

func (a *Alice) onAmplify(m *Message) (*Message, error) {
	plan := planBlock(a.cfg, a.key.Len(), a.sample, a.qber, a.cascade.leak, a.auth.availableFrom(m.Offset+2))
	if err := plan.check(); err != nil {
		return nil, err
	}
	if m.Length != plan.output || len(m.IDs) != plan.keys || m.A == nil || m.A.Len() != a.key.Len()+plan.output-1 {
		return nil, fmt.Errorf("%w: amplify to %d bits with %d keys, expected %d and %d", ErrMismatch, m.Length, len(m.IDs), plan.output, plan.keys)
	}
	out, err := ToeplitzHash(m.A, a.key, plan.output)
	if err != nil {
		return nil, err
	}
	plan.fill(&a.stats, a.cfg)
	a.result = &BlockResult{Output: out, AuthRefill: plan.refill, KeyIDs: m.IDs, Stats: a.stats}
	return &Message{Type: MsgDone}, nil
}
