package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"

	"qledger/pki"
)

// TestExpiryWatchWarnsBeforeExpiry checks the expiry gauge and that the
// log stays quiet while plenty of validity is left, warns inside the
// warning window and reports an expired certificate as an error.
func TestExpiryWatchWarnsBeforeExpiry(t *testing.T) {
	ca, err := pki.NewCA("test CA", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Leaf{CommonName: "n", Role: pki.RoleNode, NodeID: strings.Repeat("ab", 32), Validity: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(ca.PEM, leaf.TLS)
	if err != nil {
		t.Fatal(err)
	}
	end := creds.NotAfter()
	if d := time.Until(end); d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Fatalf("NotAfter %v: want the leaf's end, 90 days from now", end)
	}
	registerCertMetric()
	for _, c := range []struct {
		name   string
		now    time.Time
		logged string // "" = nothing
	}{
		{"plenty left", end.Add(-60 * 24 * time.Hour), ""},
		{"inside the window", end.Add(-10 * 24 * time.Hour), "[WARN]  certificate expires soon"},
		{"expired", end.Add(time.Hour), "[ERROR] certificate expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			w := &expiryWatch{creds: creds, node: "test-node", warnBefore: DefaultCertWarnBefore,
				logger: hclog.New(&hclog.LoggerOptions{Output: &log}), now: func() time.Time { return c.now }}
			w.check()
			var m dto.Metric
			if err := mCertExpiry.WithLabelValues("test-node").Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetGauge().GetValue(); got != float64(end.Unix()) {
				t.Fatalf("gauge %v, want %d", got, end.Unix())
			}
			if c.logged == "" && log.Len() != 0 || c.logged != "" && !strings.Contains(log.String(), c.logged) {
				t.Fatalf("logged %q, want %q", log.String(), c.logged)
			}
		})
	}
}
