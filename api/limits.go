package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limits holds the per-caller state behind rate limits, the cap on
// concurrent invocations and in-flight idempotency keys. Callers are
// named by their certificate identity; on a cluster without a CA every
// caller is anonymous and only the in-flight key check applies.
type limits struct {
	rate      rate.Limit
	burst     int
	maxInvoke int

	mu       sync.Mutex
	buckets  map[string]*bucket
	invoking map[string]int
	inflight map[string]struct{}
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// maxBuckets bounds the limiter table; idle callers are dropped first.
const maxBuckets = 10000

func newLimits(c Config) *limits {
	r := rate.Limit(c.RatePerCaller)
	if c.RatePerCaller <= 0 {
		r = rate.Inf
	}
	return &limits{rate: r, burst: max(c.RateBurst, 1), maxInvoke: c.MaxInvocationsPerCaller,
		buckets: map[string]*bucket{}, invoking: map[string]int{}, inflight: map[string]struct{}{}}
}

// allow takes one request from who's bucket; when empty it returns how
// long until the next token.
func (l *limits) allow(who string) (bool, time.Duration) {
	if l.rate == rate.Inf {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	b := l.buckets[who]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.pruneLocked(now)
		}
		b = &bucket{l: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[who] = b
	}
	b.seen = now
	l.mu.Unlock()
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *limits) pruneLocked(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.seen) > time.Minute {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		for k := range l.buckets {
			delete(l.buckets, k)
			if len(l.buckets) < maxBuckets/2 {
				break
			}
		}
	}
}

// startInvoke counts one invocation of who's; false if who already has
// maxInvoke running. done must be called when it ends.
func (l *limits) startInvoke(who string) (done func(), ok bool) {
	if l.maxInvoke <= 0 || who == "" {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.invoking[who] >= l.maxInvoke {
		return nil, false
	}
	l.invoking[who]++
	return func() {
		l.mu.Lock()
		if l.invoking[who]--; l.invoking[who] <= 0 {
			delete(l.invoking, who)
		}
		l.mu.Unlock()
	}, true
}

// claimKey marks (who, key) in flight on this gateway; false if it
// already is. A retry after the first finishes is answered by the
// replicated de-duplication table.
func (l *limits) claimKey(who, key string) (release func(), ok bool) {
	if key == "" {
		return func() {}, true
	}
	k := who + "\x00" + key
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.inflight[k]; busy {
		return nil, false
	}
	l.inflight[k] = struct{}{}
	return func() {
		l.mu.Lock()
		delete(l.inflight, k)
		l.mu.Unlock()
	}, true
}

func writeRateLimited(w http.ResponseWriter, who string, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	writeError(w, http.StatusTooManyRequests, codeRateLimited, fmt.Sprintf("caller %s is over its rate limit; retry in %v", who, d.Round(time.Millisecond)))
}
