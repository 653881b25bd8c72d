package cluster

import (
	"errors"
	"strconv"
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
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
		_, err = gometrics.NewGlobal(conf, sink)
	})
	return err
}

var registerOnce sync.Once

func register() {
	registerOnce.Do(func() {
		for _, c := range []prometheus.Collector{mTxCommitted, mBlocks, mBlockTxs, mCommit, mSubmitTime, mQueue} {
			var are prometheus.AlreadyRegisteredError
			if err := prometheus.Register(c); err != nil && !errors.As(err, &are) {
				panic(err) // programming error: a name clash in this file
			}
		}
	})
}

type nodeMetrics struct {
	node, group string
}

func newNodeMetrics(info NodeInfo) *nodeMetrics {
	register()
	return &nodeMetrics{node: info.ID[:12], group: strconv.Itoa(info.Group)}
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

func (m *nodeMetrics) setQueue(depth int) {
	mQueue.WithLabelValues(m.node, m.group).Set(float64(depth))
}

func (m *nodeMetrics) unregister() {
	mQueue.MetricVec.DeletePartialMatch(prometheus.Labels{"node": m.node})
	for _, v := range []*prometheus.MetricVec{mTxCommitted.MetricVec, mBlocks.MetricVec, mBlockTxs.MetricVec, mCommit.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"node": m.node})
	}
	mSubmitTime.MetricVec.DeletePartialMatch(prometheus.Labels{"node": m.node})
}
