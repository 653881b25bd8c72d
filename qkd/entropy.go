package qkd

import "math"

// BinaryEntropy is h(q) = -q log2 q - (1-q) log2(1-q); h(q) = 1 for q >= 1/2.
func BinaryEntropy(q float64) float64 {
	if q <= 0 {
		return 0
	}
	if q >= 0.5 {
		return 1
	}
	return -q*math.Log2(q) - (1-q)*math.Log2(1-q)
}

// AsymptoticFraction is the asymptotic secret fraction of the sifted key,
// 1 - h(Q) - f h(Q), clamped at zero.
func AsymptoticFraction(q, f float64) float64 {
	return math.Max(0, 1-BinaryEntropy(q)-f*BinaryEntropy(q))
}

// FiniteKey holds the inputs of the finite-key length bound of Tomamichel,
// Lim, Gisin and Renner, "Tight finite-key analysis for quantum
// cryptography", Nat. Commun. 3, 634 (2012), arXiv:1103.4130:
//
//	l = floor( n (1 - h(Q_tol + mu)) - leak_EC - log2(2 / (eps^2 eps_cor)) )
//	mu = sqrt( (n+k)/(n k) * (k+1)/k * ln(2/eps) )
//
// where eps = EpsSec / Steps. The block picks Q_tol from a public grid of
// Steps values fixed in advance (the smallest grid value >= the observed
// QBER), which makes it a variable-length protocol over Steps fixed-length
// ones; a union bound over the grid gives total secrecy EpsSec.
type FiniteKey struct {
	N      int     // bits entering privacy amplification (sifted minus sample)
	K      int     // bits sacrificed for parameter estimation
	QTol   float64 // tolerated QBER (grid value >= observed)
	LeakEC int     // bits revealed by error correction
	EpsSec float64 // total secrecy parameter
	EpsCor float64 // correctness parameter (verification hash 2^-t)
	Steps  int     // number of grid values Q_tol could take (>= 1)
}

func (f FiniteKey) eps() float64 {
	s := f.Steps
	if s < 1 {
		s = 1
	}
	return f.EpsSec / float64(s)
}

// Mu is the statistical deviation between the sampled and the true QBER.
func (f FiniteKey) Mu() float64 {
	if f.N <= 0 || f.K <= 0 {
		return math.Inf(1)
	}
	n, k := float64(f.N), float64(f.K)
	return math.Sqrt((n + k) / (n * k) * (k + 1) / k * math.Log(2/f.eps()))
}

// Length returns the secret key length in bits (0 if the bound is not
// positive).
func (f FiniteKey) Length() int {
	mu := f.Mu()
	if math.IsInf(mu, 0) || f.EpsCor <= 0 || f.eps() <= 0 {
		return 0
	}
	e := f.eps()
	l := float64(f.N)*(1-BinaryEntropy(f.QTol+mu)) - float64(f.LeakEC) - math.Log2(2/(e*e*f.EpsCor))
	if !(l > 0) {
		return 0
	}
	return int(math.Floor(l))
}

// tolGrid returns the smallest grid value i*step >= q (i >= 1) and the grid
// size for the given threshold.
func tolGrid(q, step, max float64) (float64, int) {
	steps := int(math.Ceil(max/step - 1e-9))
	if steps < 1 {
		steps = 1
	}
	i := int(math.Ceil(q / step))
	for float64(i)*step < q {
		i++
	}
	if i < 1 {
		i = 1
	}
	return float64(i) * step, steps
}
