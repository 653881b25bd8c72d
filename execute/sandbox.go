package execute

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// Domain-separation labels of the values derived from a request ID.
const (
	labelClock  = "qledger/execute/clock/v1"
	labelRandom = "qledger/execute/random/v1"
)

// Clock parameters. Every clock read advances the call's virtual time by
// clockTick, and a sleep advances it by the requested duration, so a
// function sees time pass and never waits.
const (
	// wallEpoch is 2026-01-01T00:00:00Z in Unix nanoseconds.
	wallEpoch = 1767225600 * int64(1e9)
	// wallSpan bounds the request-derived offset from wallEpoch (one day).
	wallSpan = 86400 * int64(1e9)
	// monoSpan bounds the request-derived start of the monotonic clock.
	monoSpan = int64(1) << 40
	// clockTick is how far one clock read advances the virtual time.
	clockTick = int64(1000)
	// clockResolution is what clock_res_get reports, in nanoseconds.
	clockResolution = 1000
)

// virtualClock is the wall and monotonic clock of one call. Both start at
// values derived from the request ID and advance only by clock reads and
// sleeps, so the sequence of values a function observes depends on nothing
// but the request ID and the function's own behaviour. One call runs on one
// goroutine, so no locking is needed.
type virtualClock struct {
	wallBase, monoBase, elapsed int64
}

func newVirtualClock(requestID [32]byte) *virtualClock {
	seed := derive(labelClock, requestID)
	wall := int64(binary.BigEndian.Uint64(seed[0:8]) % uint64(wallSpan))
	mono := int64(binary.BigEndian.Uint64(seed[8:16]) % uint64(monoSpan))
	return &virtualClock{wallBase: wallEpoch + wall, monoBase: mono}
}

// maxElapsed caps the virtual time a call can accumulate (about 73 years),
// so that sums never overflow: the clock saturates instead of wrapping.
const maxElapsed = int64(1) << 61

func (c *virtualClock) advance(d int64) {
	if d > 0 {
		c.elapsed = min(c.elapsed+min(d, maxElapsed), maxElapsed)
	}
}

func (c *virtualClock) walltime() (sec int64, nsec int32) {
	c.advance(clockTick)
	t := c.wallBase + c.elapsed
	return t / 1e9, int32(t % 1e9)
}

func (c *virtualClock) nanotime() int64 {
	c.advance(clockTick)
	return c.monoBase + c.elapsed
}

func (c *virtualClock) nanosleep(ns int64) { c.advance(ns) }

// newRandom returns the call's random source: the AES-256-CTR keystream
// (zero IV) under the key SHA-256(labelRandom || requestID).
func newRandom(requestID [32]byte) (io.Reader, error) {
	key := derive(labelRandom, requestID)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("execute: random source: %w", err)
	}
	return &keystream{ctr: cipher.NewCTR(block, make([]byte, aes.BlockSize))}, nil
}

type keystream struct{ ctr cipher.Stream }

func (k *keystream) Read(p []byte) (int, error) {
	clear(p)
	k.ctr.XORKeyStream(p, p)
	return len(p), nil
}

func derive(label string, requestID [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(requestID[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// errStdoutLimit is what the guest's fd_write sees once stdout is full.
var errStdoutLimit = errors.New("stdout limit reached")

// stdoutBuffer keeps everything written up to max bytes. The first write
// that would exceed max is refused, marks the buffer overflowed and calls
// onOverflow (which aborts the call).
type stdoutBuffer struct {
	buf        []byte
	max        int
	overflowed bool
	onOverflow func()
}

func (w *stdoutBuffer) Write(p []byte) (int, error) {
	if w.overflowed || len(w.buf)+len(p) > w.max {
		if !w.overflowed {
			w.overflowed = true
			w.onOverflow()
		}
		return 0, errStdoutLimit
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// stderrLog keeps the first max bytes written and drops the rest, never
// failing a write: stderr is a diagnostic log, not part of the result.
// Once frozen (at a memory or output limit hit) it keeps nothing more, so
// that what it holds does not depend on how soon the aborted call stops.
type stderrLog struct {
	buf       []byte
	max       int
	truncated bool
	frozen    bool
}

func (w *stderrLog) freeze() { w.frozen = true }

func (w *stderrLog) Write(p []byte) (int, error) {
	if w.frozen {
		return len(p), nil
	}
	keep := p
	if room := w.max - len(w.buf); len(keep) > room {
		w.truncated = true
		keep = keep[:max(room, 0)]
	}
	w.buf = append(w.buf, keep...)
	return len(p), nil
}

// memoryGuard is the experimental.MemoryAllocator of one call. It refuses
// to grow a linear memory beyond limit bytes, remembers that it did (the
// memory-limit outcome) and calls onRefuse (which aborts the call). The
// initial allocation is never refused, because wazero cannot handle that;
// an initial size above the limit is flagged instead and the call does not
// start (Deploy and Invoke also check exported memories beforehand).
type memoryGuard struct {
	limit    uint64
	refused  bool
	asked    uint64 // the refused size in bytes
	onRefuse func()
	mems     []*guardedMemory // what Allocate handed out, for recycle
}

func (g *memoryGuard) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	m := &guardedMemory{g: g, initial: true, buf: linearMemory(min(capacity, g.limit))}
	g.mems = append(g.mems, m)
	return m
}

// recycle hands the memories' backing arrays back to the pool. It must
// be called only once the module is closed and no call into it is
// running: wazero frees a memory (Free) as soon as the module closes,
// which with CloseOnContextDone can happen from another goroutine while
// the function still runs, so Free itself recycles nothing.
func (g *memoryGuard) recycle() {
	for _, m := range g.mems {
		recycleLinear(m.buf)
		m.buf = nil
	}
	g.mems = nil
}

// linearPool keeps zeroed backing arrays (len 0) of linear memories up to
// pooledLinearMax bytes. Every call instantiates its module afresh, so at
// thousands of calls a second allocating each module's memory anew (and
// collecting it again) was the largest source of garbage in the process.
var linearPool sync.Pool // of *[]byte

const pooledLinearMax = 1 << 20

// linearMemory returns a zeroed array of len 0 and at least capacity
// bytes, from the pool when one there is large enough.
func linearMemory(capacity uint64) []byte {
	if capacity <= pooledLinearMax {
		if p, _ := linearPool.Get().(*[]byte); p != nil && uint64(cap(*p)) >= capacity {
			return (*p)[:0]
		}
	}
	return make([]byte, 0, capacity)
}

// recycleLinear zeroes b in full and pools it, unless it is too large.
func recycleLinear(b []byte) {
	if b == nil || cap(b) > pooledLinearMax {
		return
	}
	b = b[:cap(b)]
	clear(b)
	b = b[:0]
	linearPool.Put(&b)
}

type guardedMemory struct {
	g       *memoryGuard
	buf     []byte
	initial bool
}

func (m *guardedMemory) Reallocate(size uint64) []byte {
	first := m.initial
	m.initial = false
	if size > m.g.limit {
		if !m.g.refused {
			m.g.refused = true
			m.g.asked = size
			m.g.onRefuse()
		}
		if !first {
			return nil
		}
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically, but never reserve past the limit.
	newCap := max(size, min(2*uint64(cap(m.buf)), m.g.limit))
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free does nothing: the guard recycles the array once the call is over
// (memoryGuard.recycle).
func (m *guardedMemory) Free() {}
