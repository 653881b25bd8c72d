package server

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"qledger/pki"
)

// DefaultCertWarnBefore is how long before its certificate expires a node
// starts warning (Config.CertWarnBefore).
const DefaultCertWarnBefore = 30 * 24 * time.Hour

// certCheckEvery is how often a running node looks at its certificate's
// expiry again (also after every reload).
const certCheckEvery = time.Hour

var (
	certMetricOnce sync.Once
	mCertExpiry    = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qledger_certificate_expiry_timestamp_seconds",
		Help: "When this node's certificate stops being usable (the earliest end of validity of the certificate, its intermediates and the CA root), as a Unix time; alert on it minus time().",
	}, []string{"node"})
)

// expiryWatch reports how long a node's certificate has left: a gauge for
// alerts, a warning in the log once less than warnBefore is left, an
// error once it has expired.
type expiryWatch struct {
	creds      *pki.Credentials
	node       string
	warnBefore time.Duration
	logger     hclog.Logger
	now        func() time.Time
}

// check sets the gauge and logs if expiry is near, returning the time
// left.
func (w *expiryWatch) check() time.Duration {
	end := w.creds.NotAfter()
	mCertExpiry.WithLabelValues(w.node).Set(float64(end.Unix()))
	left := end.Sub(w.now())
	switch {
	case left <= 0:
		w.logger.Error("certificate expired: peers and clients refuse this node; issue a new one and send SIGHUP", "not_after", end.UTC().Format(time.RFC3339))
	case left < w.warnBefore:
		w.logger.Warn("certificate expires soon: issue a new one and send SIGHUP", "not_after", end.UTC().Format(time.RFC3339), "left", left.Round(time.Minute).String())
	}
	return left
}

// run checks at start and every certCheckEvery until stop is closed.
func (w *expiryWatch) run(stop <-chan struct{}) {
	t := time.NewTicker(certCheckEvery)
	defer t.Stop()
	for {
		w.check()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func registerCertMetric() {
	certMetricOnce.Do(func() { _ = prometheus.Register(mCertExpiry) })
}
