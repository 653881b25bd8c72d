package election

// Execution is one node's run of the request as the protocol compares
// runs: by result hash. A node that could not run the request at all
// (unreachable, no such function, ...) has Failed set and never agrees
// with anyone.
type Execution struct {
	NodeID string
	Hash   [Size]byte
	Failed bool
}

// Verdict is what the executions of one request decided.
type Verdict struct {
	// Executions are the runs in the order the roles were asked:
	// executor, verifier (if any), tie-breaker (if it was needed).
	Executions []Execution
	// Agreed is set when a majority agreed on Hash: both the executor
	// and the verifier, two of the three once the tie-breaker ran, or the
	// executor alone when it is the only candidate.
	Agreed bool
	// Hash is the agreed result hash (zero unless Agreed).
	Hash [Size]byte
	// Verified is set when at least two executions produced Hash.
	Verified bool
	// TieBroken is set when the tie-breaker had to run.
	TieBroken bool
}

// Execute runs the execution phase for the roles of rec: the executor and
// the verifier (if any) run in parallel; if they do not agree (different
// hashes, or one failed) and rec names a tie-breaker, it runs too and two
// of the three must agree. run executes the request on one node and is
// called concurrently; it is never called for a node outside the three
// roles, nor for the tie-breaker unless needed.
func Execute(rec Record, run func(nodeID string) Execution) Verdict {
	first := []string{rec.Executor()}
	if v := rec.Verifier(); v != "" {
		first = append(first, v)
	}
	var v Verdict
	v.Executions = make([]Execution, len(first))
	each(len(first), func(i int) { v.Executions[i] = withID(run(first[i]), first[i]) })
	agreed, ok := majority(v.Executions, len(first))
	if tb := rec.TieBreaker(); !ok && tb != "" {
		v.TieBroken = true
		v.Executions = append(v.Executions, withID(run(tb), tb))
		agreed, ok = majority(v.Executions, 2)
	}
	if ok {
		v.Agreed, v.Hash = true, agreed
		v.Verified = count(v.Executions, agreed) >= 2
	}
	return v
}

// withID makes sure an execution is attributed to the node asked.
func withID(x Execution, id string) Execution {
	x.NodeID = id
	return x
}

// majority returns the hash that at least need executions agree on,
// counting only executions that ran.
func majority(xs []Execution, need int) ([Size]byte, bool) {
	for _, x := range xs {
		if !x.Failed && count(xs, x.Hash) >= need {
			return x.Hash, true
		}
	}
	return [Size]byte{}, false
}

func count(xs []Execution, h [Size]byte) int {
	c := 0
	for _, x := range xs {
		if !x.Failed && x.Hash == h {
			c++
		}
	}
	return c
}
