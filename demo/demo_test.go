package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestScenario runs the whole scenario on the smallest cluster it allows
// and checks the report names every step's outcome.
func TestScenario(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := (Scenario{Groups: 1, Replicas: 3, Txs: 20, Out: &out}).Run(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"no client certificate: refused", "auditor writing: refused", "20 committed",
		"retry:  same receipt", "same key, different body: refused", "sealed write committed",
		"no key issued", "results agree: true (election checked here)", "proof hashes -> root",
		"new leader", "the old log is a prefix of the new one: verified", "signature verified against the CA",
		"every acknowledged write found at its receipt's position", "ok  group 0", "demo: OK",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

func TestScenarioValidate(t *testing.T) {
	for _, s := range []Scenario{{Groups: 0, Replicas: 3, Txs: 1}, {Groups: 1, Replicas: 2, Txs: 1}, {Groups: 1, Replicas: 3, Txs: 0}} {
		if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "demo: need") {
			t.Errorf("%+v: %v", s, err)
		}
	}
}
