package election_test

import (
	"fmt"

	"qledger/election"
)

// A leader runs the election for one request with three candidates; an
// auditor checks the record, first without any key, then with the session
// key.
func Example() {
	sessionKey := []byte("a 32-byte session key from QKD..")
	requestID := []byte("req-42")
	key, err := election.DeriveKey(sessionKey, requestID)
	if err != nil {
		panic(err)
	}
	var reveals []election.Reveal
	for i, node := range []string{"node-1", "node-2", "node-3"} {
		var nonce [32]byte // real candidates use election.NewNonce()
		nonce[0] = byte(i + 1)
		reveals = append(reveals, election.Reveal{NodeID: node, Nonce: nonce})
	}
	rec, err := election.Elect(key, "key-7", requestID, reveals)
	if err != nil {
		panic(err)
	}
	fmt.Println("executor:", rec.Executor())
	fmt.Println("verifier:", rec.Verifier())
	fmt.Println("tie-breaker:", rec.TieBreaker())
	fmt.Println("verify:", election.Verify(rec))
	fmt.Println("verify with session key:", election.VerifyWithSessionKey(rec, sessionKey))
	rec.Candidates[0], rec.Candidates[1] = rec.Candidates[1], rec.Candidates[0]
	fmt.Println("after swapping two:", election.Verify(rec))
	// Output:
	// executor: node-3
	// verifier: node-1
	// tie-breaker: node-2
	// verify: <nil>
	// verify with session key: <nil>
	// after swapping two: election: candidates out of order: "node-3" ranks before "node-1"
}
