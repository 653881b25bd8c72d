// Package fsm is one node group's replicated state machine: it applies
// committed raft log entries to a bbolt chain store.
//
// The parts, from the outside in:
//
//   - FSM is the thin raft.FSM / raft.BatchingFSM adapter: it decodes log
//     entries, hands them to the Processor inside one bbolt transaction, and
//     snapshots and restores the store.
//   - Processor is stateless: it turns one Command into writes against a
//     store transaction. A recovery or audit tool can reuse it as is.
//   - Store owns the bbolt file (on-disk format FormatVersion): blocks by
//     height, a compact transaction index by ID partitioned into epochs
//     of the log, each sealed one with a Bloom filter (txindex.go,
//     filter.go), the Merkle hashes of the group's whole transaction log
//     as C2SP tiles (tiles.go), the de-duplication table, and the last
//     applied raft index. MigrateFile converts a store of an older format.
//
// Determinism: Apply reads nothing but the entry and the store. The block
// timestamp comes from the proposing leader inside the command; map order,
// the clock and randomness are never consulted. Any byte string, including
// garbage, is applied the same way on every replica: a command that does
// not decode or validate is recorded as applied and answered with an error,
// and changes nothing else.
//
// Idempotency: the applied raft index is stored in the same bbolt
// transaction as the writes it caused, and entries at or below it are
// skipped, so replaying the raft log after a restart applies nothing twice.
package fsm
