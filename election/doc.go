// Package election implements the XOR-stake rule of the first seed paper
// (section 7.2, Table 4) that picks, per request, which node executes a
// function, which one verifies it and which one breaks a tie, and the
// record that lets anyone check the choice afterwards.
//
// The rule, for one request:
//
//	key     = HKDF-SHA256(session key, info = label || request ID)   (DeriveKey)
//	h_i     = SHA-256(nonce_i)            for each candidate's 32-byte nonce
//	stake_i = h_i XOR key                 read as a 256-bit unsigned integer
//
// The highest stake executes, the second verifies, the third breaks a tie;
// equal stakes (which need equal h) are ordered by node ID, bytewise
// ascending. The ranking does not depend on the order in which candidates
// are listed.
//
// The package owns the protocol too. Each candidate keeps its Nonces; the
// leader's Run asks every candidate, over a Transport the caller
// implements with its RPC, to commit to h before the key could be known to
// it, seals the ranking, then collects and checks the nonces (Collector
// does the bookkeeping). Execute then has the executor and the verifier
// run the request and asks the tie-breaker when they disagree;
// RunExecute does both with one round trip less, asking the two nodes
// ranked first to reveal and run in one exchange (over a Runner). The Record
// keeps every candidate's node ID, h, stake and nonce, the session key's
// ID and CommitKey(key). Verify checks a record without any key;
// VerifyWithKey and VerifyWithSessionKey also tie it to the key. See
// DESIGN.md for what these checks do and do not prove.
//
// The rule and the record are pure and deterministic; NewNonce, the
// clocks and the concurrency of Run and Execute are the only exceptions.
// The package imports only the standard library.
package election
