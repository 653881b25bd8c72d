// Package execrecord defines the execution record: what a group's leader
// commits, as a chain.TxExec transaction, for every function invocation —
// the request and its input, the election (election.Record), who executed,
// verified and broke a tie, every execution's result hash, the agreed
// result or the conflict, and the response.
//
// Like every ledger format it has a canonical, versioned binary encoding
// (MarshalBinary, UnmarshalBinary: version 2, or 3 for a record that
// carries the request's origin): decoding rejects unknown
// versions, truncation, oversize fields, unknown outcomes and flags and
// trailing bytes, and whatever decodes re-encodes to the same bytes.
//
// Chains written before the binary encoding hold version 1 records, the
// JSON of the same fields. They are never rewritten — a block's hash
// covers them — so Decode reads both forms: a payload starting with '{' is
// a version 1 JSON record (strict: known fields only, one object,
// "version": 1), anything else binary. Leaders write only the binary form.
//
// The package is pure (no raft, no runtime): auditors and clients read
// records without importing the cluster or linking the WebAssembly
// runtime.
package execrecord
