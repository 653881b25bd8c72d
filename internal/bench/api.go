package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"qledger/api/client"
)

// Errors of the API load generator.
var (
	// ErrBadConfig is an APIConfig that cannot be run.
	ErrBadConfig = errors.New("bench: bad configuration")
	// ErrNothingSucceeded is a run in which no request succeeded.
	ErrNothingSucceeded = errors.New("bench: no request succeeded")
)

// APIConfig is one run of API: load from outside against a running
// cluster's HTTP API, as its users see it.
type APIConfig struct {
	// Addrs are the API base URLs the load is spread over: client c
	// talks to connection c mod Conns, connection k to Addrs[k mod len].
	Addrs []string
	// Connect returns a new API client for addr, with its own connection
	// pool (over TLS, HTTP/2 puts one client's requests on one
	// connection).
	Connect func(addr string) (*client.Client, error)
	// Clients is the number of concurrent clients (at least 1).
	Clients int
	// Conns is the number of API clients the clients share (0: one per
	// client).
	Conns int
	// Duration is the measured time, after Warmup unmeasured.
	Duration, Warmup time.Duration
	// Payload is the size of each written payload in bytes.
	Payload int
	// Rate, if positive, is an open loop: requests start at Rate per
	// second in all (each client its share, on a fixed schedule), and a
	// request's latency counts from its scheduled start, so a cluster
	// that falls behind shows it in the latencies. Zero is a closed
	// loop: each client sends its next request when the last is answered.
	Rate float64
	// ReadFraction of the requests are reads (GET /v1/tx/{id} of a
	// transaction this run wrote) at ReadLevel; the rest are writes.
	ReadFraction float64
	ReadLevel    client.Level
	// Group is the group written to; negative lets the server choose.
	Group int
	// Timeout bounds each request.
	Timeout time.Duration
}

// Validate reports the first problem with the config.
func (c *APIConfig) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return fmt.Errorf("%w: no API address", ErrBadConfig)
	case c.Connect == nil:
		return fmt.Errorf("%w: no way to connect", ErrBadConfig)
	case c.Clients < 1:
		return fmt.Errorf("%w: --clients must be at least 1, got %d", ErrBadConfig, c.Clients)
	case c.Conns < 0:
		return fmt.Errorf("%w: --conns must not be negative, got %d", ErrBadConfig, c.Conns)
	case c.Duration <= 0:
		return fmt.Errorf("%w: --duration must be positive, got %s", ErrBadConfig, c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("%w: --warmup must not be negative, got %s", ErrBadConfig, c.Warmup)
	case c.Payload < 0:
		return fmt.Errorf("%w: --payload must not be negative, got %d", ErrBadConfig, c.Payload)
	case c.Rate < 0:
		return fmt.Errorf("%w: --rate must not be negative (0: closed loop), got %g", ErrBadConfig, c.Rate)
	case c.ReadFraction < 0 || c.ReadFraction > 1:
		return fmt.Errorf("%w: --reads must be between 0 and 1, got %g", ErrBadConfig, c.ReadFraction)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: the request timeout must be positive, got %s", ErrBadConfig, c.Timeout)
	}
	switch c.ReadLevel {
	case "", "stale", "default", "linearizable":
	default:
		return fmt.Errorf("%w: --read-level must be stale, default or linearizable, got %q", ErrBadConfig, c.ReadLevel)
	}
	return nil
}

// APIReport is what a run measured. Latencies are in milliseconds.
type APIReport struct {
	Addrs        []string `json:"addrs"`
	Clients      int      `json:"clients"`
	Conns        int      `json:"conns"`
	Loop         string   `json:"loop"` // "closed" or "open"
	TargetRate   float64  `json:"target_rate,omitempty"`
	Payload      int      `json:"payload_bytes"`
	ReadFraction float64  `json:"read_fraction"`
	ReadLevel    string   `json:"read_level,omitempty"`
	Seconds      float64  `json:"seconds"`
	// Total is every request, Writes and Reads each kind.
	Total  OpStats `json:"total"`
	Writes OpStats `json:"writes"`
	Reads  OpStats `json:"reads"`
	// Errors counts failed requests by the API's error code, or
	// "transport" (no answer) and "timeout" (no answer in time).
	Errors map[string]int `json:"errors"`
}

// OpStats are the successful requests of one kind.
type OpStats struct {
	OK        int     `json:"ok"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
}

// API drives a running cluster's HTTP API with cfg's load and returns
// what it measured. Only the measured window counts: requests that
// complete within it. It fails if the config is bad, if the transactions
// reads need cannot be written first, or if no request succeeded.
func API(ctx context.Context, cfg APIConfig) (APIReport, error) {
	if err := cfg.Validate(); err != nil {
		return APIReport{}, err
	}
	if cfg.Conns == 0 || cfg.Conns > cfg.Clients {
		cfg.Conns = cfg.Clients
	}
	l := &apiLoad{cfg: cfg, payload: make([]byte, cfg.Payload)}
	for k := 0; k < cfg.Conns; k++ {
		c, err := cfg.Connect(cfg.Addrs[k%len(cfg.Addrs)])
		if err != nil {
			return APIReport{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		l.conns = append(l.conns, c)
	}
	if cfg.ReadFraction > 0 {
		if err := l.seed(ctx); err != nil {
			return APIReport{}, err
		}
	}
	rep := l.run(ctx)
	if rep.Total.OK == 0 {
		return rep, fmt.Errorf("%w in %s (errors: %s)", ErrNothingSucceeded, cfg.Duration, FormatErrors(rep.Errors))
	}
	return rep, nil
}

// apiLoad is one run's state.
type apiLoad struct {
	cfg     APIConfig
	conns   []*client.Client
	payload []byte

	mu  sync.Mutex
	ids []string // recently written transactions, for reads
}

// recentIDs bounds the transactions reads choose from.
const recentIDs = 1024

// seed writes a transaction through every connection (at most 16), so
// that reads have something to read from the start.
func (l *apiLoad) seed(ctx context.Context) error {
	for _, c := range l.conns[:min(len(l.conns), 16)] {
		if err := l.write(ctx, c); err != nil {
			return fmt.Errorf("bench: writing the transactions to read: %w", err)
		}
	}
	return nil
}

func (l *apiLoad) write(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	opt := client.SubmitOptions{}
	if l.cfg.Group >= 0 {
		g := l.cfg.Group
		opt.Group = &g
	}
	r, _, err := c.Submit(ctx, l.payload, opt)
	if err != nil || l.cfg.ReadFraction == 0 {
		return err
	}
	l.mu.Lock()
	if len(l.ids) < recentIDs {
		l.ids = append(l.ids, r.ID)
	} else {
		l.ids[rand.IntN(recentIDs)] = r.ID
	}
	l.mu.Unlock()
	return nil
}

func (l *apiLoad) read(ctx context.Context, c *client.Client) error {
	l.mu.Lock()
	id := l.ids[rand.IntN(len(l.ids))]
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	_, err := c.Tx(ctx, id, l.cfg.ReadLevel)
	return err
}

// sample is one finished request.
type sample struct {
	read bool
	lat  time.Duration
	err  error
}

// run drives the clients through warm-up and the measured window and
// summarizes the requests that completed within the window.
func (l *apiLoad) run(ctx context.Context) APIReport {
	start := time.Now()
	from, to := start.Add(l.cfg.Warmup), start.Add(l.cfg.Warmup+l.cfg.Duration)
	ctx, cancel := context.WithDeadline(ctx, to)
	defer cancel()
	samples := make([][]sample, l.cfg.Clients)
	var wg sync.WaitGroup
	for c := range l.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples[c] = l.client(ctx, c, start, from, to)
		}()
	}
	wg.Wait()
	return l.report(samples)
}

// client is client c's loop until to; it returns the requests that
// completed in [from, to).
func (l *apiLoad) client(ctx context.Context, c int, start, from, to time.Time) []sample {
	conn := l.conns[c%len(l.conns)]
	// The requests themselves are bounded by their timeout, not by the
	// run: one in flight at the end finishes, and does not count.
	reqCtx := context.WithoutCancel(ctx)
	var out []sample
	for k := 0; ; k++ {
		begin := time.Now()
		if l.cfg.Rate > 0 {
			begin = start.Add(time.Duration(float64(k*l.cfg.Clients+c) / l.cfg.Rate * float64(time.Second)))
			if !begin.Before(to) {
				return out
			}
			select {
			case <-time.After(time.Until(begin)):
			case <-ctx.Done():
				return out
			}
		} else if !begin.Before(to) {
			return out
		}
		s := sample{read: l.cfg.ReadFraction > 0 && rand.Float64() < l.cfg.ReadFraction}
		if s.read {
			s.err = l.read(reqCtx, conn)
		} else {
			s.err = l.write(reqCtx, conn)
		}
		end := time.Now()
		s.lat = end.Sub(begin)
		if !end.Before(from) && end.Before(to) {
			out = append(out, s)
		}
	}
}

func (l *apiLoad) report(samples [][]sample) APIReport {
	rep := APIReport{Addrs: l.cfg.Addrs, Clients: l.cfg.Clients, Conns: len(l.conns), Loop: "closed", Payload: l.cfg.Payload,
		ReadFraction: l.cfg.ReadFraction, ReadLevel: string(l.cfg.ReadLevel), Seconds: l.cfg.Duration.Seconds(), Errors: map[string]int{}}
	if l.cfg.Rate > 0 {
		rep.Loop, rep.TargetRate = "open", l.cfg.Rate
	}
	var all, writes, reads []time.Duration
	for _, ss := range samples {
		for _, s := range ss {
			if s.err != nil {
				rep.Errors[errorCode(s.err)]++
				continue
			}
			all = append(all, s.lat)
			if s.read {
				reads = append(reads, s.lat)
			} else {
				writes = append(writes, s.lat)
			}
		}
	}
	rep.Total, rep.Writes, rep.Reads = opStats(all, l.cfg.Duration), opStats(writes, l.cfg.Duration), opStats(reads, l.cfg.Duration)
	return rep
}

func opStats(lats []time.Duration, window time.Duration) OpStats {
	if len(lats) == 0 {
		return OpStats{}
	}
	slices.Sort(lats)
	at := func(p int) float64 { return msFloat(lats[min(len(lats)*p/100, len(lats)-1)]) }
	return OpStats{OK: len(lats), PerSecond: float64(len(lats)) / window.Seconds(), P50: at(50), P90: at(90), P99: at(99), Max: msFloat(lats[len(lats)-1])}
}

func msFloat(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// errorCode names a failed request: the API's error code, "timeout" or
// "transport".
func errorCode(err error) string {
	var ae *client.APIError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return ae.Body.Code
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "transport"
	}
}

// FormatErrors is errors by code, most frequent first ("none" if empty).
func FormatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	codes := make([]string, 0, len(errs))
	for c := range errs {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if errs[codes[i]] != errs[codes[j]] {
			return errs[codes[i]] > errs[codes[j]]
		}
		return codes[i] < codes[j]
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, errs[c])
	}
	return strings.Join(parts, ", ")
}

// Print writes the report for people.
func (r APIReport) Print(w io.Writer) {
	loop := "closed loop"
	if r.Loop == "open" {
		loop = fmt.Sprintf("open loop at %g requests/s", r.TargetRate)
	}
	level := r.ReadLevel
	if level == "" {
		level = "server default"
	}
	fmt.Fprintf(w, "qledger bench api: %d address(es), %d clients over %d API clients, %s, %d-byte payloads, %.0f%% reads (level %s), %gs measured\n",
		len(r.Addrs), r.Clients, r.Conns, loop, r.Payload, 100*r.ReadFraction, level, r.Seconds)
	for _, row := range []struct {
		name string
		s    OpStats
	}{{"all", r.Total}, {"writes", r.Writes}, {"reads", r.Reads}} {
		if row.s.OK == 0 && row.name != "all" {
			continue
		}
		fmt.Fprintf(w, "  %-6s %8d ok  %9.1f/s  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n",
			row.name, row.s.OK, row.s.PerSecond, row.s.P50, row.s.P90, row.s.P99, row.s.Max)
	}
	fmt.Fprintf(w, "  errors: %s\n", FormatErrors(r.Errors))
}
