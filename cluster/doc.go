// Package cluster is a qledger node at run time: one hashicorp/raft member
// of its node group, the group's chain store behind it (package fsm), the
// internal RPC that forwards writes, reads, joins and invocations across
// groups, memberlist gossip for membership, and the leader-side reconciler
// that adds, promotes and removes raft servers as nodes come and go.
//
// A Node is opened with Open(Config) and is safe for concurrent use. Its
// public methods are what the HTTP API (package api) and the commands call:
//
//   - writes: Submit commits a transaction to its group from any node;
//   - reads: Head, Block, Blocks, Tx, Consistency and SignedHead at a
//     Level (stale, default, linearizable), forwarded to the group that owns
//     the data and, above stale, to its leader;
//   - invocations: Invoke runs a deployed function as a verified contract
//     (the election, execution, verification and record) on its group's
//     leader; Invocation reads a committed record back;
//   - membership: Join, Remove, Leave, Status, Ready.
//
// Errors are the named values in errors.go; they survive an RPC hop, so
// errors.Is works on an answer that crossed the cluster. Raft types never
// leave the package: callers see NodeInfo, Receipt, QueryResult and the
// like. Local starts an embedded cluster of many nodes in one process
// (qledger dev, demo and tests).
//
// DESIGN.md, beside this file, walks a request through the node: the
// goroutines, the write path, the read levels, membership and the
// invocation path.
package cluster
