package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ExecutorProvider starts and stops a group's executor nodes: the
// autoscaler's hands. An implementation must never touch a voter-role
// node, and must make an executor leave (Node.Leave: out of gossip and of
// the raft configuration) before it stops it, so the group stops electing
// it first.
type ExecutorProvider interface {
	// Executors returns how many executor nodes of group this provider
	// runs.
	Executors(ctx context.Context, group int) (int, error)
	// SetExecutors starts or stops executor nodes of group until there
	// are k, and returns how many there are.
	SetExecutors(ctx context.Context, group, k int) (int, error)
}

// AutoscaleConfig configures a group's executor autoscaler. The group
// leader runs it; the decision is the number of executor nodes (voters
// are never counted, started or stopped).
type AutoscaleConfig struct {
	// Min and Max bound the executors of the group; Min 0 allows scaling
	// to zero.
	Min, Max int
	// TargetInFlight is how many invocations in flight one executor
	// should carry; demand / TargetInFlight, rounded up, is the wanted
	// count.
	TargetInFlight float64
	// TargetLatency, if set, asks for one executor more than the current
	// count while the mean invocation latency of the last interval is
	// above it.
	TargetLatency time.Duration
	// TargetCPU, if set (0..1), asks for one executor more than the
	// current count while invocations are in flight and the executors'
	// mean CPU use (each one's process, as a share of its machine's CPUs,
	// from its Health answer) is above it; 0: CPU is not a signal.
	TargetCPU float64
	// Interval is the time between decisions; each changes the count by
	// at most one.
	Interval time.Duration
	// UpWindow and DownWindow are the stabilization windows: the count
	// rises only when every decision of the last UpWindow wanted more,
	// and falls only when every decision of the last DownWindow wanted
	// fewer.
	UpWindow, DownWindow time.Duration
	// IdleToZero: after this long without any invocation the wanted count
	// is Min (zero by default). Before that, a group with no demand keeps
	// its executors.
	IdleToZero time.Duration
	// ColdStartWait is the cold-start policy. 0 (the default, "voters"):
	// an invocation at a group with no live executor is elected among the
	// voters at once. Above 0 ("wait"): it waits up to this long for an
	// executor to become eligible (a configuration member alive in
	// gossip), the autoscaler deciding at once instead of at its next
	// interval; then it is elected among whoever is there, the voters
	// alone if no executor came in time.
	ColdStartWait time.Duration
}

// DefaultAutoscaleConfig returns 0..4 executors, 2 invocations in flight
// per executor, a decision every 2 s, no up window, a 30 s down window and
// scale to zero after 60 s idle.
func DefaultAutoscaleConfig() AutoscaleConfig {
	return AutoscaleConfig{Min: 0, Max: 4, TargetInFlight: 2, Interval: 2 * time.Second, DownWindow: 30 * time.Second, IdleToZero: time.Minute}
}

// ErrAutoscaleConfig means an AutoscaleConfig field is invalid.
var ErrAutoscaleConfig = errors.New("cluster: invalid autoscale config")

// Validate checks the bounds.
func (c AutoscaleConfig) Validate() error {
	switch {
	case c.Min < 0 || c.Max < c.Min || c.Max < 1:
		return fmt.Errorf("%w: min %d, max %d (0 <= min <= max, max >= 1)", ErrAutoscaleConfig, c.Min, c.Max)
	case c.TargetInFlight <= 0:
		return fmt.Errorf("%w: target in flight %v", ErrAutoscaleConfig, c.TargetInFlight)
	case c.TargetCPU < 0 || c.TargetCPU > 1:
		return fmt.Errorf("%w: target CPU %v (a share of the CPUs, 0 to 1; 0: off)", ErrAutoscaleConfig, c.TargetCPU)
	case c.Interval <= 0 || c.UpWindow < 0 || c.DownWindow < 0 || c.IdleToZero < 0 || c.TargetLatency < 0 || c.ColdStartWait < 0:
		return fmt.Errorf("%w: durations must be positive (interval %s)", ErrAutoscaleConfig, c.Interval)
	}
	return nil
}

// demand is what the autoscaler observes of its group at one decision.
type demand struct {
	Now time.Time
	// Executors is the current count of executor nodes.
	Executors int
	// InFlight is the most invocations in flight on the leader during the
	// last interval (so a burst between two decisions is seen).
	InFlight int
	// MeanLatency is the mean invocation latency of the last interval (0:
	// none finished).
	MeanLatency time.Duration
	// LastActivity is when the group last had an invocation in flight.
	LastActivity time.Time
	// ExecutorCPU is the executors' mean CPU use (0..1), negative when no
	// executor answered.
	ExecutorCPU float64
}

// recommendation is one decision's wanted count, kept for the windows.
type recommendation struct {
	at   time.Time
	want int
}

// ScaleDecision is one decision of the autoscaler, as logged and shown
// in the group's status.
type ScaleDecision struct {
	At        time.Time `json:"at"`
	Executors int       `json:"executors"`
	// Wanted is what demand alone asks for; Desired what the safeguards
	// (bounds, windows, one step) allow now.
	Wanted   int `json:"wanted"`
	Desired  int `json:"desired"`
	InFlight int `json:"in_flight"`
	// ExecutorCPU is the executors' mean CPU use (share of their
	// machines' CPUs) when the decision was taken, if measured.
	ExecutorCPU float64 `json:"executor_cpu,omitempty"`
	Reason      string  `json:"reason"`
	Err         string  `json:"error,omitempty"`
}

// scalePolicy is the autoscaler's pure decision rule plus the history its
// windows need. It is not safe for concurrent use.
type scalePolicy struct {
	cfg     AutoscaleConfig
	history []recommendation
}

// decide returns the count wanted by demand alone and the count to move
// to now: the wanted count within [Min, Max]; one step toward it per
// decision; up only when the recommendations have wanted more than the
// current count for the whole up window, down only when they have wanted
// fewer for the whole down window.
func (p *scalePolicy) decide(d demand) ScaleDecision {
	want, reason := p.wanted(d)
	p.history = append(p.history, recommendation{at: d.Now, want: want})
	keep := max(p.cfg.UpWindow, p.cfg.DownWindow)
	for len(p.history) > 1 && d.Now.Sub(p.history[1].at) >= keep {
		p.history = p.history[1:]
	}
	dec := ScaleDecision{At: d.Now, Executors: d.Executors, Wanted: want, Desired: d.Executors, InFlight: d.InFlight, ExecutorCPU: max(d.ExecutorCPU, 0), Reason: reason}
	switch {
	case d.Executors < p.cfg.Min:
		dec.Desired, dec.Reason = d.Executors+1, "below the minimum"
	case d.Executors > p.cfg.Max:
		dec.Desired, dec.Reason = d.Executors-1, "above the maximum"
	case want > d.Executors && p.all(d.Now, p.cfg.UpWindow, func(w int) bool { return w > d.Executors }):
		dec.Desired = d.Executors + 1
	case want < d.Executors && p.all(d.Now, p.cfg.DownWindow, func(w int) bool { return w < d.Executors }):
		dec.Desired = d.Executors - 1
	case want != d.Executors:
		dec.Reason += "; held by the stabilization window"
	}
	return dec
}

// wanted is what demand asks for, within the bounds, and why.
func (p *scalePolicy) wanted(d demand) (int, string) {
	c := p.cfg
	var want int
	var reason string
	switch {
	case d.InFlight > 0:
		want = int(math.Ceil(float64(d.InFlight) / c.TargetInFlight))
		reason = fmt.Sprintf("%d in flight, %g per executor", d.InFlight, c.TargetInFlight)
		if c.TargetLatency > 0 && d.MeanLatency > c.TargetLatency && want <= d.Executors {
			want = d.Executors + 1
			reason = fmt.Sprintf("mean latency %s above the target %s", d.MeanLatency.Round(time.Millisecond), c.TargetLatency)
		}
		if c.TargetCPU > 0 && d.Executors > 0 && d.ExecutorCPU > c.TargetCPU && want <= d.Executors {
			want = d.Executors + 1
			reason = fmt.Sprintf("executor CPU %.0f %% above the target %.0f %%", 100*d.ExecutorCPU, 100*c.TargetCPU)
		}
	case d.Now.Sub(d.LastActivity) >= c.IdleToZero:
		want, reason = c.Min, fmt.Sprintf("idle for %s", d.Now.Sub(d.LastActivity).Round(time.Second))
	default:
		want, reason = d.Executors, "no demand, not idle long enough to shrink"
	}
	return min(max(want, c.Min), c.Max), reason
}

// all reports whether the recommendations have satisfied f for at least
// window: the latest ones satisfy it back to one made window or more
// before now (a zero window: the latest one).
func (p *scalePolicy) all(now time.Time, window time.Duration, f func(int) bool) bool {
	for i := len(p.history) - 1; i >= 0; i-- {
		r := p.history[i]
		if !f(r.want) {
			return false
		}
		if now.Sub(r.at) >= window {
			return true
		}
	}
	return false
}

// loadMeter counts this leader's invocations: in flight now, the peak and
// the latencies since the last decision, and the last activity.
type loadMeter struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	total    time.Duration
	count    int
	last     time.Time
}

func (m *loadMeter) begin() {
	m.mu.Lock()
	m.inFlight++
	m.peak = max(m.peak, m.inFlight)
	m.last = time.Now()
	m.mu.Unlock()
}

func (m *loadMeter) end(d time.Duration) {
	m.mu.Lock()
	m.inFlight--
	m.total += d
	m.count++
	m.last = time.Now()
	m.mu.Unlock()
}

// take returns the peak in flight and the mean latency since the last
// call, and the last activity, and starts a new interval.
func (m *loadMeter) take() (peak int, mean time.Duration, last time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	peak, last = m.peak, m.last
	if m.count > 0 {
		mean = m.total / time.Duration(m.count)
	}
	m.peak, m.total, m.count = m.inFlight, 0, 0
	if m.inFlight > 0 {
		m.last = time.Now()
		last = m.last
	}
	return peak, mean, last
}

// autoscaler runs the policy on the group leader and hands its decisions
// to the provider.
type autoscaler struct {
	n        *Node
	cfg      AutoscaleConfig
	provider ExecutorProvider
	latest   atomic.Pointer[ScaleDecision]
	// kick asks for a decision now: an invocation is waiting at a group
	// with no executor (the cold-start wait policy).
	kick chan struct{}
}

// run decides every Interval while this node leads its group, and at
// once when kicked.
func (a *autoscaler) run(stop <-chan struct{}) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	var pol *scalePolicy
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-a.kick:
		}
		if !a.n.IsLeader() {
			pol = nil // a new term starts with empty windows
			continue
		}
		if pol == nil {
			pol = &scalePolicy{cfg: a.cfg}
			a.n.load.take() // the previous term's interval is not ours
		}
		a.step(pol)
	}
}

// step takes one decision and acts on it.
func (a *autoscaler) step(pol *scalePolicy) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cur, err := a.provider.Executors(ctx, a.n.group)
	if err != nil {
		a.n.logger.Warn("autoscale: cannot count executors", "group", a.n.group, "error", err)
		return
	}
	peak, mean, last := a.n.load.take()
	if last.IsZero() {
		last = a.n.started
	}
	cpu := -1.0
	if a.cfg.TargetCPU > 0 {
		cpu = a.n.executorCPU(ctx)
	}
	dec := pol.decide(demand{Now: time.Now(), Executors: cur, InFlight: peak, MeanLatency: mean, LastActivity: last, ExecutorCPU: cpu})
	if dec.Desired != cur {
		a.n.logger.Info("autoscale decision", "group", a.n.group, "executors", cur, "desired", dec.Desired, "wanted", dec.Wanted, "in_flight", peak, "executor_cpu", dec.ExecutorCPU, "reason", dec.Reason)
		got, err := a.provider.SetExecutors(ctx, a.n.group, dec.Desired)
		if err != nil {
			dec.Err = err.Error()
			a.n.logger.Warn("autoscale: provider failed", "group", a.n.group, "desired", dec.Desired, "now", got, "error", err)
		}
		dec.Executors = got
	}
	a.n.metrics.observeAutoscale(dec)
	a.latest.Store(&dec)
}

// AutoscaleStatus is the group's last autoscaling decision (nil when this
// node does not run the autoscaler or has not decided yet).
func (n *Node) AutoscaleStatus() *ScaleDecision {
	a := n.scaler.Load()
	if a == nil {
		return nil
	}
	return a.latest.Load()
}

// Autoscale makes this node run the executor autoscaler for its group
// while it leads it, acting through p. Call it once, before the node
// serves invocations.
func (n *Node) Autoscale(cfg AutoscaleConfig, p ExecutorProvider) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w: no provider", ErrAutoscaleConfig)
	}
	if n.cfg.Role == RoleExecutor {
		return fmt.Errorf("%w: an executor does not run the autoscaler", ErrAutoscaleConfig)
	}
	a := &autoscaler{n: n, cfg: cfg, provider: p, kick: make(chan struct{}, 1)}
	if !n.scaler.CompareAndSwap(nil, a) {
		return fmt.Errorf("%w: already running", ErrAutoscaleConfig)
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); a.run(n.stop) }()
	return nil
}

// externalExecutors is the provider of the external-scaler mode: it counts
// the group's executors (executor-role configuration members alive in
// gossip) and starts or stops nothing. The decisions are only exported
// (qledger_autoscale_desired_executors), for KEDA or a Kubernetes HPA to
// act on.
type externalExecutors struct{ n *Node }

// ExternalExecutors returns the external-scaler mode's provider for this
// node's group: SetExecutors changes nothing and reports the current
// count, so the decision is only logged, shown and exported.
func (n *Node) ExternalExecutors() ExecutorProvider { return externalExecutors{n: n} }

func (e externalExecutors) Executors(_ context.Context, group int) (int, error) {
	if group != e.n.group {
		return 0, fmt.Errorf("%w: group %d, this node is in group %d", ErrBadRequest, group, e.n.group)
	}
	return e.n.liveExecutors()
}

// liveExecutors counts the executors eligible for this group's elections:
// executor-role configuration members alive in gossip.
func (n *Node) liveExecutors() (int, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, n.convert(err)
	}
	view := n.gossip.view()
	count := 0
	for _, s := range cf.Configuration().Servers {
		if m, ok := view[string(s.ID)]; ok && m.state == stateAlive && m.meta.Role == RoleExecutor {
			count++
		}
	}
	return count, nil
}

// executorCPU asks the group's live executors for their Health and
// returns their mean CPU use, -1 when none answered (within a second).
func (n *Node) executorCPU(ctx context.Context) float64 {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return -1
	}
	view := n.gossip.view()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		sum   float64
		count int
		wg    sync.WaitGroup
	)
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		if m, ok := view[id]; !ok || m.state != stateAlive || m.meta.Role != RoleExecutor {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			var h Health
			if err := n.client.callAs(ctx, addr, id, mHealth, struct{}{}, &h); err != nil || h.ID != id {
				return
			}
			mu.Lock()
			sum += h.CPU
			count++
			mu.Unlock()
		}(string(s.Address))
	}
	wg.Wait()
	if count == 0 {
		return -1
	}
	return sum / float64(count)
}

// coldStart applies the cold-start policy to an invocation this leader
// is about to elect: under the wait policy (ColdStartWait > 0) with no
// live executor in the group, it kicks the autoscaler and waits until an
// executor is eligible, ColdStartWait has passed or ctx ends. It returns
// how long it waited (0: no wait). The caller counts the invocation in
// flight first, so the kicked decision sees the demand.
func (n *Node) coldStart(ctx context.Context) time.Duration {
	a := n.scaler.Load()
	if a == nil || a.cfg.ColdStartWait <= 0 {
		return 0
	}
	if c, err := n.liveExecutors(); err != nil || c > 0 {
		return 0
	}
	t0 := time.Now()
	select {
	case a.kick <- struct{}{}:
	default: // a decision is already asked for
	}
	deadline := time.NewTimer(a.cfg.ColdStartWait)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(t0)
		case <-deadline.C:
			n.logger.Info("cold start: no executor became eligible in time; the voters serve the invocation", "waited", a.cfg.ColdStartWait)
			return time.Since(t0)
		case <-poll.C:
			if c, err := n.liveExecutors(); err == nil && c > 0 {
				waited := time.Since(t0)
				n.logger.Debug("cold start: an executor became eligible", "waited", waited)
				return waited
			}
		}
	}
}

func (e externalExecutors) SetExecutors(ctx context.Context, group, _ int) (int, error) {
	return e.Executors(ctx, group)
}
