package cluster

import (
	"errors"
	"strconv"
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"qledger/fsm"
)

// Prometheus metrics of every node in the process, labelled by node and
// group, registered once on the default registry.
var (
	metricsOnce sync.Once

	mTxCommitted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qledger_tx_committed_total", Help: "Transactions committed by blocks this node proposed as leader.",
	}, []string{"node", "group"})
	mBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qledger_blocks_proposed_total", Help: "Blocks this node proposed as leader and saw committed.",
	}, []string{"node", "group"})
	mBlockTxs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qledger_block_transactions", Help: "Transactions per committed block.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 17),
	}, []string{"node", "group"})
	mCommit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qledger_block_commit_seconds", Help: "Time from proposing a block to its commit.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"node", "group"})
	mQueue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_queue_depth", Help: "Transactions waiting for a block on this node (non-zero only on a group leader); an autoscaler's signal.",
	}, []string{"node", "group"})
	mSubmitTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qledger_submit_seconds", Help: "Time to commit a submitted transaction, as seen by the node that accepted it.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"node", "group", "result"})

	mInvocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qledger_invocations_total", Help: "Invocations this node led as group leader, by result: ok, error (the function failed, recorded), conflict (no majority, recorded), failed (nothing recorded).",
	}, []string{"node", "group", "result"})
	mInvocationConflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qledger_invocation_conflicts_total", Help: "Invocations whose executions disagreed or failed (a conflict is in the record).",
	}, []string{"node", "group"})
	mInvocationTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qledger_invocation_seconds", Help: "Time an invocation took on its group leader, by phase: election (commit and reveal), execute (winner and verifier, and a tie-breaker), commit (the record through raft), total.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	}, []string{"node", "group", "phase"})
	mCorrupt = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_chain_corrupt", Help: "1 while this replica's chain store of the group is found damaged (the alarm; GET /v1/cluster says what), else 0.",
	}, []string{"node", "group"})
	mCorruptHeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_chain_corrupt_height", Help: "The first bad height of a damaged chain store (0: not tied to a block, or no alarm).",
	}, []string{"node", "group"})
	mVerifiedHeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_chain_verify_height", Help: "The height the running or last full verification (scrub) of the chain store reached.",
	}, []string{"node", "group"})
	mVerifyTarget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_chain_verify_target_height", Help: "The head height the running or last full verification verifies up to.",
	}, []string{"node", "group"})
	mScrubs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qledger_chain_scrubs_total", Help: "Full verifications of the chain store, by result: ok, damaged, aborted.",
	}, []string{"node", "group", "result"})
	mExecutors = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_autoscale_executors", Help: "Executor nodes of the group at the autoscaler's last decision (only on the group leader running it).",
	}, []string{"node", "group"})
	mDesired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_autoscale_desired_executors", Help: "Executor nodes the autoscaler's last decision asked for: demand within the bounds, one step at a time, after the stabilization windows. An external scaler (KEDA, HPA) can scale on it.",
	}, []string{"node", "group"})
	mDemand = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_autoscale_in_flight", Help: "Most invocations in flight on the group leader during the autoscaler's last interval: the demand signal.",
	}, []string{"node", "group"})
	mExecutorCPU = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_autoscale_executor_cpu", Help: "The group's executors' mean CPU use (share of their machines' CPUs, 0 to 1) at the autoscaler's last decision; measured only with a CPU target.",
	}, []string{"node", "group"})
	mCompileTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qledger_function_compile_seconds", Help: "Time to load and compile a deployed function on this node (cached by code hash afterwards).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"node", "group"})
)

// EnableRaftMetrics routes hashicorp/raft's go-metrics telemetry to the
// default Prometheus registry (raft_* series), once per process.
func EnableRaftMetrics() error {
	var err error
	metricsOnce.Do(func() {
		register()
		var sink *gmprom.PrometheusSink
		sink, err = gmprom.NewPrometheusSink()
		if err != nil {
			return
		}
		conf := gometrics.DefaultConfig("qledger")
		conf.EnableHostname = false
		conf.EnableRuntimeMetrics = false
		// Heartbeat timings are dropped: a leader sends each follower a
		// heartbeat several times a second even when idle, and every
		// sample is a Prometheus summary update (about a tenth of an idle
		// dev cluster's CPU with the other raft timers). Followers' lag
		// and contact stay visible: qledger_raft_replication_appendEntries_*,
		// raft_lag in GET /v1/cluster.
		// So are the network transport's own timings of each RPC it
		// receives (decode, enqueue, respond: four summary updates per
		// RPC, idle or not; 5% of an idle dev cluster's CPU samples);
		// the RPCs' round trips stay in
		// qledger_raft_replication_appendEntries_rpc.
		conf.BlockedPrefixes = []string{"qledger.raft.replication.heartbeat", "qledger.raft.rpc.processHeartbeat", "qledger.raft.net."}
		_, err = gometrics.NewGlobal(conf, sink)
	})
	return err
}

var registerOnce sync.Once

func register() {
	registerOnce.Do(func() {
		for _, c := range []prometheus.Collector{mTxCommitted, mBlocks, mBlockTxs, mCommit, mSubmitTime, mQueue, mInvocations, mInvocationConflicts, mInvocationTime, mCompileTime, mExecutors, mDesired, mDemand, mExecutorCPU,
			mCorrupt, mCorruptHeight, mVerifiedHeight, mVerifyTarget, mScrubs} {
			var are prometheus.AlreadyRegisteredError
			if err := prometheus.Register(c); err != nil && !errors.As(err, &are) {
				panic(err) // programming error: a name clash in this file
			}
		}
	})
}

type nodeMetrics struct {
	node, group string
	// queue is this node's qledger_queue_depth series, looked up once:
	// it is set ten times a second, idle or not.
	queue prometheus.Gauge
}

func newNodeMetrics(info NodeInfo) *nodeMetrics {
	register()
	m := &nodeMetrics{node: info.ID[:12], group: strconv.Itoa(info.Group)}
	m.queue = mQueue.WithLabelValues(m.node, m.group)
	return m
}

func (m *nodeMetrics) observeBlock(txs int, d time.Duration) {
	mBlocks.WithLabelValues(m.node, m.group).Inc()
	mTxCommitted.WithLabelValues(m.node, m.group).Add(float64(txs))
	mBlockTxs.WithLabelValues(m.node, m.group).Observe(float64(txs))
	mCommit.WithLabelValues(m.node, m.group).Observe(d.Seconds())
}

func (m *nodeMetrics) observeSubmit(err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	mSubmitTime.WithLabelValues(m.node, m.group, result).Observe(d.Seconds())
}

func (m *nodeMetrics) observeInvocation(result string, conflict bool, election, exec, commit, total time.Duration) {
	mInvocations.WithLabelValues(m.node, m.group, result).Inc()
	if conflict {
		mInvocationConflicts.WithLabelValues(m.node, m.group).Inc()
	}
	for phase, d := range map[string]time.Duration{"election": election, "execute": exec, "commit": commit, "total": total} {
		if d > 0 {
			mInvocationTime.WithLabelValues(m.node, m.group, phase).Observe(d.Seconds())
		}
	}
}

func (m *nodeMetrics) observeCompile(d time.Duration) {
	mCompileTime.WithLabelValues(m.node, m.group).Observe(d.Seconds())
}

func (m *nodeMetrics) setQueue(depth int) {
	m.queue.Set(float64(depth))
}

func (m *nodeMetrics) unregister() {
	mQueue.MetricVec.DeletePartialMatch(prometheus.Labels{"node": m.node})
	for _, v := range []*prometheus.MetricVec{mTxCommitted.MetricVec, mBlocks.MetricVec, mBlockTxs.MetricVec, mCommit.MetricVec,
		mInvocations.MetricVec, mInvocationConflicts.MetricVec, mInvocationTime.MetricVec, mCompileTime.MetricVec,
		mCorrupt.MetricVec, mCorruptHeight.MetricVec, mVerifiedHeight.MetricVec, mVerifyTarget.MetricVec, mScrubs.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"node": m.node})
	}
	mSubmitTime.MetricVec.DeletePartialMatch(prometheus.Labels{"node": m.node})
}

// setCorrupt shows the chain alarm (nil: none).
func (m *nodeMetrics) setCorrupt(a *ChainAlarm) {
	v, h := 0.0, 0.0
	if a != nil {
		v, h = 1, float64(a.Height)
	}
	mCorrupt.WithLabelValues(m.node, m.group).Set(v)
	mCorruptHeight.WithLabelValues(m.node, m.group).Set(h)
}

func (m *nodeMetrics) setVerified(done, total uint64) {
	mVerifiedHeight.WithLabelValues(m.node, m.group).Set(float64(done))
	mVerifyTarget.WithLabelValues(m.node, m.group).Set(float64(total))
}

func (m *nodeMetrics) observeScrub(err error) {
	result := "ok"
	if _, damaged := fsm.DamageOf(err); damaged {
		result = "damaged"
	} else if err != nil {
		result = "aborted"
	}
	mScrubs.WithLabelValues(m.node, m.group, result).Inc()
}

func (m *nodeMetrics) observeAutoscale(d ScaleDecision) {
	mExecutors.WithLabelValues(m.node, m.group).Set(float64(d.Executors))
	mDesired.WithLabelValues(m.node, m.group).Set(float64(d.Desired))
	mDemand.WithLabelValues(m.node, m.group).Set(float64(d.InFlight))
	mExecutorCPU.WithLabelValues(m.node, m.group).Set(d.ExecutorCPU)
}
