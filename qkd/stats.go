package qkd

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Stats describes one block. Counts are bits unless the name says
// otherwise. All float fields are finite, so Stats always encodes as JSON.
type Stats struct {
	Mode  Mode   `json:"mode"`
	Block uint64 `json:"block"`
	// Attempts is the number of transmissions (paper mode restarts).
	Attempts int `json:"attempts"`
	Qubits   int `json:"qubits"`
	Detected int `json:"detected"`
	Sifted   int `json:"sifted"`

	// Parameter estimation (full mode) or the published half (paper mode).
	SampleBits   int     `json:"sample_bits"`
	SampleErrors int     `json:"sample_errors"`
	QBER         float64 `json:"qber"`
	ModelQBER    float64 `json:"model_qber"`
	Threshold    float64 `json:"qber_threshold"`

	// Reconciliation.
	ReconciledBits  int     `json:"reconciled_bits"`
	CorrectedErrors int     `json:"corrected_errors"`
	LeakedBits      int     `json:"leaked_ec_bits"`
	CascadeRounds   int     `json:"cascade_round_trips"`
	Efficiency      float64 `json:"cascade_efficiency"`
	VerifyBits      int     `json:"verify_hash_bits"`

	// Privacy amplification.
	QTol       float64 `json:"qber_tolerance"`
	Mu         float64 `json:"finite_key_mu"`
	SecureBits int     `json:"secure_bits"`
	OutputBits int     `json:"output_bits"`

	// Authentication and output.
	Messages   int `json:"messages"`
	AuthBits   int `json:"auth_bits_consumed"`
	RefillBits int `json:"auth_refill_bits"`
	NetBits    int `json:"net_bits"`
	Keys       int `json:"keys"`
	KeyBits    int `json:"key_bits"`

	SecretFraction float64 `json:"secret_fraction"`
	Seconds        float64 `json:"seconds"`
	NetBitsPerSec  float64 `json:"net_bits_per_second"`

	Aborted     bool   `json:"aborted"`
	AbortReason string `json:"abort_reason,omitempty"`
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func (s *Stats) sanitize() {
	for _, p := range []*float64{&s.QBER, &s.ModelQBER, &s.Threshold, &s.Efficiency, &s.QTol, &s.Mu,
		&s.SecretFraction, &s.Seconds, &s.NetBitsPerSec} {
		*p = finite(*p)
	}
}

// String renders the statistics for people.
func (s Stats) String() string {
	var b strings.Builder
	_ = s.Write(&b)
	return b.String()
}

// Write prints the statistics as aligned "name  value" lines.
func (s Stats) Write(w io.Writer) error {
	var lines [][2]string
	add := func(k, format string, a ...any) { lines = append(lines, [2]string{k, fmt.Sprintf(format, a...)}) }
	add("mode", "%s", s.Mode)
	if s.Attempts > 1 {
		add("attempts", "%d", s.Attempts)
	}
	add("qubits sent", "%d", s.Qubits)
	add("detected", "%d", s.Detected)
	add("sifted", "%d", s.Sifted)
	if s.Mode == ModePaper {
		add("check bits", "%d (%d differ)", s.SampleBits, s.SampleErrors)
	} else {
		add("sample", "%d bits, %d errors", s.SampleBits, s.SampleErrors)
	}
	add("QBER", "%.4f%% (model %.4f%%, threshold %.2f%%)", 100*s.QBER, 100*s.ModelQBER, 100*s.Threshold)
	if s.Mode == ModeFull && s.ReconciledBits > 0 {
		add("reconciled", "%d bits, %d errors corrected", s.ReconciledBits, s.CorrectedErrors)
		add("cascade leak", "%d bits in %d round trips, f = %.3f", s.LeakedBits, s.CascadeRounds, s.Efficiency)
		add("verify hash", "%d bits", s.VerifyBits)
		add("finite key", "Q_tol %.3f%%, mu %.5f, secure length %d", 100*s.QTol, s.Mu, s.SecureBits)
		add("output", "%d bits (auth refill %d, keys %d x %d)", s.OutputBits, s.RefillBits, s.Keys, s.KeyBits)
		add("authentication", "%d messages, %d key bits consumed", s.Messages, s.AuthBits)
		add("net key", "%d bits", s.NetBits)
	} else if s.Mode == ModePaper {
		add("key", "%d bits (%d keys x %d)", s.OutputBits, s.Keys, s.KeyBits)
	}
	add("secret fraction", "%.4f of sifted", s.SecretFraction)
	add("time", "%.3f s (%.0f net bits/s)", s.Seconds, s.NetBitsPerSec)
	if s.Aborted {
		add("ABORTED", "%s", s.AbortReason)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-16s %s\n", l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}
